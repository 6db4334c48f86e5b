package tokens

import (
	"fmt"

	"github.com/kc-agent/kc-agent/agent/config"
)

// Code says why a token request failed, in the token manager's own terms.
// The daemon and the proxy send it on as the wire code of the same name
// (ipc.Code*) with the HTTP status ipc.HTTPStatus gives it.
type Code string

// Codes of Error.
const (
	CodeLoginRequired  Code = "login_required"  // the login is gone: `kc-agent login`
	CodeUnknownProfile Code = "unknown_profile" // no such profile in the config
	CodeUnavailable    Code = "unavailable"     // try again later (provider or keychain trouble)
	CodeConfig         Code = "config_error"    // the profile can not work as configured
	CodeInvalidScope   Code = "invalid_scope"   // the provider refused the request's scopes
	CodeForbidden      Code = "forbidden"       // the agent does not do this (a proof for the provider's token endpoint)
	CodeBadRequest     Code = "bad_request"     // the request itself is wrong
)

// Error is a token request's failure: a code, a message and what to do.
type Error struct {
	Code Code
	Msg  string
	Hint string
}

func (e *Error) Error() string { return e.Msg }

// State is where a profile's login stands.
type State string

// States of a profile: logged_out -> active <-> degraded -> login_required.
const (
	StateLoggedOut     State = "logged_out"
	StateActive        State = "active"
	StateDegraded      State = "degraded"
	StateLoginRequired State = "login_required"
)

func errReloaded() error {
	return &Error{Code: CodeUnavailable, Msg: "the profile was reloaded during a refresh; try again"}
}

func loginHint(name string) string {
	if name == config.DefaultProfile {
		return "run `kc-agent login` to sign in again"
	}
	return fmt.Sprintf("run `kc-agent login --profile %s` to sign in again", name)
}
