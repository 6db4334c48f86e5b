//go:build unix

package ipc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// olderAgent serves the token endpoint the way an agent from before ID
// tokens did: strict (unknown fields refused), or, for the lenient case,
// answering an access token whatever the type.
func olderAgent(t *testing.T, strict bool) *Client {
	t.Helper()
	ln, path := testenv.PrivateSocket(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Profile string `json:"profile"`
		}
		if strict {
			if e := DecodeJSON(r, &req); e != nil {
				WriteError(w, e)
				return
			}
		}
		WriteJSON(w, http.StatusOK, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 60})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return NewClientAt(path)
}

// An older agent never gets its access token handed out as an ID token,
// and the error says to restart it; access requests still work.
func TestTokenIDFromOlderAgent(t *testing.T) {
	for _, strict := range []bool{true, false} {
		c := olderAgent(t, strict)
		_, err := c.Token(context.Background(), TokenRequest{Profile: "default", Type: TokenTypeID})
		var ae *Error
		if !errors.As(err, &ae) || !strings.Contains(ae.Hint, "older than this kc-agent") {
			t.Fatalf("strict=%v: got %v", strict, err)
		}
		tok, err := c.Token(context.Background(), TokenRequest{Profile: "default"})
		if err != nil || tok.Token() != "at" {
			t.Fatalf("strict=%v: access request: %v", strict, err)
		}
	}
}
