package oidc

import (
	"context"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// The browser sign-in's redirect listener closes another user's
// connection before reading it: a callback with the right state, from
// uid 65534, consumes nothing, and the user's own callback still ends the
// sign-in.
func TestCallbackListenerRefusesOtherUsers(t *testing.T) {
	setpriv := testenv.OtherUser(t)
	c := &Client{Issuer: "https://sso.example.com/realms/a", ClientID: "kc-agent",
		meta: metadata{AuthURL: "https://sso.example.com/realms/a/auth", TokenURL: "https://sso.example.com/realms/a/token"}}
	b, err := c.StartBrowser(nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	auth, _ := url.Parse(b.AuthURL)
	q := auth.Query()
	callback := q.Get("redirect_uri") + "?" + url.Values{"state": {q.Get("state")}, "error": {"access_denied"}}.Encode()

	out, err := exec.Command(setpriv, testenv.AsNobody("curl", "-sS", "-i", "--max-time", "5", callback)...).CombinedOutput()
	if err == nil || strings.Contains(string(out), "HTTP/") {
		t.Fatalf("the callback listener answered uid %d (%v):\n%s", testenv.Nobody, err, out)
	}
	select {
	case r := <-b.results:
		t.Fatalf("another user's callback ended the sign-in: %v", r.err)
	default:
	}

	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Wait(ctx); resp.StatusCode != http.StatusForbidden || KindOf(err) != KindDenied {
		t.Fatalf("the user's own callback: HTTP %d, %v", resp.StatusCode, err)
	}
}

// An authorization endpoint that is not a link a browser should open
// stops the sign-in before anything listens.
func TestStartBrowserChecksTheAuthorizationEndpoint(t *testing.T) {
	c := &Client{Issuer: "https://sso.example.com/realms/a", ClientID: "kc-agent", meta: metadata{AuthURL: "javascript:alert(1)"}}
	if _, err := c.StartBrowser(nil, time.Minute); err == nil || !strings.Contains(err.Error(), "authorization_endpoint") {
		t.Fatalf("StartBrowser: %v", err)
	}
}
