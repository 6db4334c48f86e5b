//go:build unix

package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// An agent from before ID tokens ignores "type" and answers an access
// token: the client must not hand that out as an ID token.
func TestTokenIDFromOlderAgent(t *testing.T) {
	dir, err := os.MkdirTemp("", "kci")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o700)
	path := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var got TokenRequest
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&got)
		WriteJSON(w, http.StatusOK, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 60})
	})}
	go srv.Serve(ln)
	defer srv.Close()

	c := NewClientAt(path)
	_, err = c.Token(context.Background(), TokenRequest{Profile: "default", Type: TokenTypeID})
	var ae *Error
	if !errors.As(err, &ae) || ae.Hint == "" || got.Type != TokenTypeID {
		t.Fatalf("got %v (request type %q)", err, got.Type)
	}
	tok, err := c.Token(context.Background(), TokenRequest{Profile: "default"})
	if err != nil || tok.Token() != "at" {
		t.Fatalf("access request: %v", err)
	}
}
