// Package ipc is the agent's local API: HTTP/1.1 with JSON bodies over a
// Unix socket, versioned paths, typed errors, and the peer checks that make
// sure only the agent's own user gets a token. It holds the socket paths,
// the server-side listener and the client.
package ipc

import (
	"errors"
	"fmt"
	"time"
)

// Paths of the API, all under /v1.
const (
	PathHealth = "/v1/health"
	PathToken  = "/v1/token"
	PathStatus = "/v1/status"
	PathReload = "/v1/reload"
)

// Host is the fake host name the client puts in requests; the server
// accepts nothing else, so a browser request carrying some other Host
// can not be replayed against the socket.
const Host = "kc-agent.sock"

// MaxRequestBody bounds request bodies.
const MaxRequestBody = 64 << 10

// TokenRequest asks for an access token.
type TokenRequest struct {
	Profile string   `json:"profile"`
	Scopes  []string `json:"scopes,omitempty"`
	// MinValid is the least remaining lifetime, in seconds, the caller
	// accepts; a shorter-lived cached token is refreshed first.
	MinValid float64 `json:"min_valid,omitempty"`
}

// TokenResponse carries an access token to a same-user caller.
type TokenResponse struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
	ExpiresIn   int64     `json:"expires_in"`
}

// String never shows the token.
func (t TokenResponse) String() string {
	return fmt.Sprintf("TokenResponse{type=%s expires_at=%s}", t.TokenType, t.ExpiresAt.Format(time.RFC3339))
}

// ReloadRequest tells the agent that a profile's login changed.
type ReloadRequest struct {
	Profile string `json:"profile,omitempty"`
}

// ProfileStatus is one profile in the status answer.
type ProfileStatus struct {
	Name            string     `json:"name"`
	State           string     `json:"state"`
	User            string     `json:"user,omitempty"`
	Issuer          string     `json:"issuer"`
	ClientID        string     `json:"client_id"`
	Store           string     `json:"store"`
	AccessExpiresAt *time.Time `json:"access_expires_at,omitempty"`
	LastRefresh     *time.Time `json:"last_refresh,omitempty"`
	NextRefresh     *time.Time `json:"next_refresh,omitempty"`
	LastUsed        *time.Time `json:"last_used,omitempty"`
	Refreshes       int        `json:"refreshes"`
	LastError       string     `json:"last_error,omitempty"`
	Hint            string     `json:"hint,omitempty"`
	PersistPending  bool       `json:"persist_pending,omitempty"`
}

// Profile states.
const (
	StateLoggedOut     = "logged_out"
	StateActive        = "active"
	StateDegraded      = "degraded"
	StateLoginRequired = "login_required"
)

// StatusResponse describes the agent.
type StatusResponse struct {
	Version     string          `json:"version"`
	PID         int             `json:"pid"`
	StartedAt   time.Time       `json:"started_at"`
	Uptime      string          `json:"uptime"`
	Socket      string          `json:"socket"`
	ConfigPath  string          `json:"config_path"`
	ConfigError string          `json:"config_error,omitempty"`
	ProxyAddr   string          `json:"proxy_addr,omitempty"`
	ProxyError  string          `json:"proxy_error,omitempty"`
	Profiles    []ProfileStatus `json:"profiles"`
}

// Error codes in error bodies.
const (
	CodeLoginRequired = "login_required"
	CodeUnknown       = "unknown_profile"
	CodeBadRequest    = "bad_request"
	CodeUnavailable   = "unavailable"
	CodeConfig        = "config_error"
	CodeForbidden     = "forbidden"
	CodeInternal      = "internal"
)

// Error is the typed error body: {"error": code, "message": ..., "hint": ...}.
type Error struct {
	Code    string `json:"error"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	Status  int    `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// ErrUnreachable means no agent answers on the socket.
var ErrUnreachable = errors.New("agent unreachable")
