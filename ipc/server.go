package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/kc-agent/kc-agent/internal/sameuser"
)

// ErrAgentRunning means another agent already serves the socket.
var ErrAgentRunning = errors.New("another kc-agent already serves this socket")

// SameUserListener drops every connection whose peer is not this
// process's user (internal/sameuser, shared with the sign-in listeners of
// agent/oidc, which must not import the wire).
type SameUserListener = sameuser.Listener

// NewServer wraps a handler with the socket API's limits: bounded headers
// and bodies, deadlines, and the Host and browser checks.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           guard(h),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// A token request may wait for one refresh (bounded by the
		// provider timeout); leave room for it.
		WriteTimeout:   45 * time.Second,
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: 16 << 10,
	}
}

func guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Browsers can not dial Unix sockets, but a forwarding tool might;
		// anything that looks browser-made is refused.
		if FromBrowser(r.Header) {
			WriteError(w, &Error{Code: CodeForbidden, Message: "browser-originated requests are refused"})
			return
		}
		if r.Host != Host && r.Host != "localhost" {
			WriteError(w, &Error{Code: CodeForbidden, Message: fmt.Sprintf("unexpected Host %q; use http://%s/", r.Host, Host)})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBody)
		h.ServeHTTP(w, r)
	})
}

// FromBrowser tells a request a browser made: scripts, curl and the
// clients send none of these headers; browsers send at least one. The
// socket API refuses all of them; the proxy applies its browser model
// (agent/proxy/guard.go) to them.
func FromBrowser(h http.Header) bool {
	for _, k := range []string{"Origin", "Referer", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest"} {
		if h.Get(k) != "" {
			return true
		}
	}
	return false
}

// WriteJSON writes v as a JSON answer, with a Content-Length: small
// clients (scripts, curl, the Python client) need not read chunks.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":"`+CodeInternal+`","message":"encoding the answer failed"}`)
	}
	data = append(data, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// WriteError writes a typed error body, with the status HTTPStatus gives
// its code: the one mapping.
func WriteError(w http.ResponseWriter, e *Error) {
	WriteJSON(w, HTTPStatus(e.Code), e)
}

// DecodeJSON reads a bounded JSON request body into v, rejecting unknown
// fields and trailing data.
func DecodeJSON(r *http.Request, v any) *Error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Code: CodeTooLarge, Message: "request body too large"}
		}
		return &Error{Code: CodeBadRequest, Message: "malformed JSON request: " + err.Error()}
	}
	if dec.More() {
		return &Error{Code: CodeBadRequest, Message: "malformed JSON request: trailing data"}
	}
	return nil
}

// Shutdown stops the server, giving in-flight requests a moment.
func Shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
