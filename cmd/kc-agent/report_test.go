//go:build unix

package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/ipc"
)

// An agent's error text that carries a JWT (a broken or hostile agent, an
// identity provider's error_description passed on) reaches stderr with the
// token cut out, the message and hint otherwise whole.
func TestTokenErrorIsScrubbed(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbmEifQ.c2lnbmF0dXJlLW9uZQ"
	ln, sock := testenv.PrivateSocket(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ipc.WriteJSON(w, http.StatusServiceUnavailable, ipc.Error{Code: ipc.CodeUnavailable,
			Message: "Keycloak said: token " + jwt + " is not active", Hint: "retry with " + jwt})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	t.Setenv("KC_AGENT_SOCK", sock)
	t.Setenv("KC_AGENT_NO_AUTOSTART", "1")
	var out, errOut bytes.Buffer
	code := run([]string{"token"}, &IOStreams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	stderr := errOut.String()
	if code != exitError || out.Len() != 0 {
		t.Errorf("exit %d, %d bytes on stdout", code, out.Len())
	}
	if strings.Contains(stderr, "eyJ") {
		t.Fatalf("stderr shows the token (%d bytes)", len(stderr))
	}
	for _, want := range []string{"kc-agent: error: Keycloak said: token [token] is not active\n", "kc-agent: hint: retry with [token]\n"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
