//go:build unix

package ipc

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// Version skew is read from /v1/health, never from an error's wording: an
// agent of another version that has no such endpoint is named with both
// versions; the same version (or an endpoint's own not_found) is not skew.
func TestSkewFromHealth(t *testing.T) {
	agentVersion := "0.5.0"
	ln, sock := testenv.PrivateSocket(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "version": agentVersion})
	})
	mux.HandleFunc("GET /v1/gone", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such sign-in"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// An older agent: 404 with bad_request (today's say no_such_endpoint).
		WriteJSON(w, http.StatusNotFound, &Error{Code: CodeBadRequest, Message: "whatever words an old agent used"})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := NewClientAt(sock)
	ctx := context.Background()

	err := c.Skew(ctx, c.do(ctx, http.MethodPost, "/v1/new", nil, nil), "1.0.0", http.MethodPost, "/v1/new")
	var skew *SkewError
	if !errors.As(err, &skew) || skew.Agent != "0.5.0" || skew.Client != "1.0.0" {
		t.Fatalf("older agent: %v", err)
	}
	agentVersion = "1.0.0"
	if err := c.Skew(ctx, c.do(ctx, http.MethodPost, "/v1/new", nil, nil), "1.0.0", http.MethodPost, "/v1/new"); errors.As(err, &skew) || !NoSuchEndpoint(err) {
		t.Fatalf("same version: %v", err)
	}
	agentVersion = "0.5.0"
	if err := c.Skew(ctx, c.do(ctx, http.MethodGet, "/v1/gone", nil, nil), "1.0.0", http.MethodGet, "/v1/gone"); errors.As(err, &skew) || NoSuchEndpoint(err) {
		t.Fatalf("an endpoint's own not found: %v", err)
	}
}
