package oidc

import (
	"github.com/kc-agent/kc-agent/internal/idptext"

	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/oauth2"
)

// Kind says what the caller should do about an error.
type Kind int

const (
	KindOther         Kind = iota
	KindLoginRequired      // the session is gone: the user must log in again
	KindConfig             // a configuration problem: retrying will not help
	KindTransient          // network or server trouble: retry with backoff
	KindDenied             // the user (or policy) said no during login
	KindScope              // a scope the request asked for is not available: that request fails, nothing else
)

func (k Kind) String() string {
	switch k {
	case KindLoginRequired:
		return "login_required"
	case KindConfig:
		return "config_error"
	case KindTransient:
		return "transient"
	case KindDenied:
		return "denied"
	case KindScope:
		return "invalid_scope"
	}
	return "error"
}

// Error is a classified provider error. Its text never contains a token:
// it is built from the provider's error code and description only.
type Error struct {
	Kind        Kind
	Status      int
	Code        string // OAuth error code, e.g. invalid_grant
	Description string // the provider's error_description
	Msg         string
	Hint        string
	Err         error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Msg)
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s", e.Code)
		if e.Description != "" {
			fmt.Fprintf(&b, ": %s", e.Description)
		}
		b.WriteString(")")
	}
	if e.Err != nil && e.Code == "" {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf classifies any error from this package.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

// HintOf returns the hint of a classified error, if any.
func HintOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}

func classifyTokenError(status int, code, desc string) error {
	// Both are the provider's text, shown on terminals and in notebooks.
	code, desc = idptext.Printable(code), idptext.Printable(desc)
	e := &Error{Status: status, Code: code, Description: desc}
	if dpopError(e) {
		return e
	}
	switch {
	case code == "invalid_grant" && strings.Contains(desc, "Invalid token issuer"):
		e.Kind = KindConfig
		e.Msg = "the token was issued under a different base URL than the one in use"
		e.Hint = "use exactly the issuer URL you logged in with (same host: 127.0.0.1 and localhost differ), then `kc-agent login` again"
	case code == "invalid_grant":
		// Every other invalid_grant means the session is over: Keycloak
		// says "Offline user session not found", "Offline session not
		// active", "Token is not active", "Stale token", "Maximum allowed
		// refresh token reuse exceeded", "Session doesn't have required
		// client" or "Session not active"; its text is in the message.
		e.Kind = KindLoginRequired
		e.Msg = "the offline session is no longer valid"
		e.Hint = "run `kc-agent login` to sign in again"
	case code == "invalid_client" || code == "unauthorized_client":
		e.Kind = KindConfig
		e.Msg = "the client is not allowed to do this"
		e.Hint = "check the client id, and that it is a public client with the standard flow and device grant enabled"
	case code == "invalid_scope":
		e.Kind = KindScope
		e.Msg = "a requested scope is not available to the client"
		e.Hint = "ask for another scope, or ask the Keycloak admin to add it to the client as an optional client scope"
	case code == "not_allowed" || strings.Contains(desc, "Offline tokens not allowed"):
		e.Kind = KindConfig
		e.Msg = "offline tokens are not allowed for this user or client"
		e.Hint = "ask the Keycloak admin to grant the user the offline_access role and the client the offline_access scope"
	case code == "access_denied":
		e.Kind = KindDenied
		e.Msg = "access was denied"
		e.Hint = "run `kc-agent login` again and accept the request"
	case code == "expired_token":
		e.Kind = KindDenied
		e.Msg = "the device code expired before the login was approved"
		e.Hint = "run `kc-agent login --device` again and approve it sooner"
	case status >= 500 || status == http.StatusTooManyRequests || status == 0:
		e.Kind = KindTransient
		e.Msg = fmt.Sprintf("the identity provider answered HTTP %d", status)
		e.Hint = "kc-agent retries by itself"
	default:
		e.Kind = KindOther
		e.Msg = fmt.Sprintf("the identity provider refused the request (HTTP %d)", status)
	}
	return e
}

// fromRetrieveError classifies an error returned by golang.org/x/oauth2.
func fromRetrieveError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return classifyTokenError(status, re.ErrorCode, re.ErrorDescription)
	}
	if isNetErr(err) {
		return unreachable("identity provider", err)
	}
	return err
}
