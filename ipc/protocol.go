// Package ipc is the agent's local API: HTTP/1.1 with JSON bodies over a
// Unix socket, versioned paths, typed errors, the protocol's limits and
// defaults, the server-side listener with its peer check, and the client.
// Where the socket is and whether it is this user's is ipc/discovery.
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
	PathProxy  = "/v1/proxy"
	// PathLogin starts a sign-in (POST); PathLogin+"/{id}" reports on one
	// (GET, ?wait=30s to long-poll) or cancels it (DELETE), and
	// PathLogin+"/{id}/qr.svg" is the QR code of its verification URL.
	// POST PathLogin+"/{id}/launch" makes a one-time launcher link for
	// its page (LaunchResponse), the only link that goes to a browser
	// opener's argv.
	PathLogin = "/v1/login"
	// PathLogout ends a profile's login (POST): the session at the
	// provider, then the stored token.
	PathLogout = "/v1/logout"
)

// Host is the fake host name the client puts in requests; the server
// accepts nothing else, so a browser request carrying some other Host
// can not be replayed against the socket.
const Host = "kc-agent.sock"

// MaxMinValid bounds TokenRequest.MinValid: no access token lives a day.
const MaxMinValid = 24 * time.Hour

// MaxRequestBody bounds request bodies.
const MaxRequestBody = 64 << 10

// Token types a caller may ask for (TokenRequest.Type).
const (
	TokenTypeAccess = "access" // the default
	TokenTypeID     = "id"     // the ID token of the same refresh (kubectl)
)

// TokenRequest asks for an access token, or with Type "id" for the ID
// token issued with it.
type TokenRequest struct {
	Profile string   `json:"profile"`
	Scopes  []string `json:"scopes,omitempty"`
	// MinValid is the least remaining lifetime, in seconds, the caller
	// accepts; a shorter-lived cached token is refreshed first.
	MinValid float64 `json:"min_valid,omitempty"`
	// ForceRefresh asks for a token issued after this request arrived: the
	// caller's token was refused (a 401). However many callers ask at once,
	// the profile makes one refresh grant.
	ForceRefresh bool `json:"force_refresh,omitempty"`
	// Type is "access" (or empty) or "id". Agents from before the ID token
	// answer an ID request with an access token: check IDToken.
	Type string `json:"type,omitempty"`
}

// TokenResponse carries a token to a same-user caller: AccessToken, or for
// Type "id" IDToken. ExpiresAt and ExpiresIn are those of the token given.
type TokenResponse struct {
	AccessToken string    `json:"access_token,omitempty"`
	IDToken     string    `json:"id_token,omitempty"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
	ExpiresIn   int64     `json:"expires_in"`
}

// Token is the token the response carries, whichever type was asked for.
func (t TokenResponse) Token() string {
	if t.IDToken != "" {
		return t.IDToken
	}
	return t.AccessToken
}

// String never shows the token.
func (t TokenResponse) String() string {
	return fmt.Sprintf("TokenResponse{type=%s expires_at=%s}", t.TokenType, t.ExpiresAt.Format(time.RFC3339))
}

// ReloadRequest tells the agent that a profile's login changed.
type ReloadRequest struct {
	Profile string `json:"profile,omitempty"`
}

// Sign-in flows (LoginRequest.Flow).
const (
	FlowDevice  = "device"  // approve on any device: a URL, a code, a QR code
	FlowBrowser = "browser" // a browser on the agent's machine, redirected to the agent's loopback listener
)

// Sign-in states (LoginStatus.State).
const (
	LoginPending   = "pending"
	LoginDone      = "done"
	LoginExpired   = "expired"
	LoginDenied    = "denied"
	LoginFailed    = "failed"
	LoginCancelled = "cancelled"
)

// MaxLoginWait bounds the long poll of GET /v1/login/{id}?wait=.
const MaxLoginWait = 30 * time.Second

// LoginRequest asks the agent to sign in a profile its config names: the
// issuer and client come from the config, never from the caller.
type LoginRequest struct {
	Profile string `json:"profile"`
	Flow    string `json:"flow"`
	// SwitchUser lets the sign-in replace a stored login of another user
	// (another sub); without it such a sign-in is refused and ended, and
	// the stored login keeps serving.
	SwitchUser bool `json:"switch_user,omitempty"`
}

// LogoutRequest ends a profile's login; All revokes every offline session
// of the user for the client, on every machine.
type LogoutRequest struct {
	Profile string `json:"profile"`
	All     bool   `json:"all,omitempty"`
}

// How ending the session at the provider went (LogoutResponse.Remote).
const (
	RemoteEnded        = "ended"
	RemoteAlreadyEnded = "already_ended"
	RemoteFailed       = "failed"
	// RemoteEndedHere: a logout with all ended this login's session but
	// could not end the user's others (RemoteError says why and where to).
	RemoteEndedHere = "ended_here_only"
)

// LogoutResponse says what a logout did. The stored token is gone either
// way; Remote says whether the provider's session ended too.
type LogoutResponse struct {
	Profile string `json:"profile"`
	// LoggedIn: there was a stored login to end.
	LoggedIn    bool   `json:"logged_in"`
	User        string `json:"user,omitempty"`
	ClientID    string `json:"client_id,omitempty"`
	All         bool   `json:"all,omitempty"`
	Remote      string `json:"remote,omitempty"`
	RemoteError string `json:"remote_error,omitempty"`
	// Store names where the token was kept (for the user's record).
	Store string `json:"store,omitempty"`
}

// LoginIdentity is who signed in, from the verified ID token.
type LoginIdentity struct {
	PreferredUsername string `json:"preferred_username"`
	Subject           string `json:"sub"`
	Email             string `json:"email,omitempty"`
	Name              string `json:"name,omitempty"`
}

// LoginStatus is a sign-in the agent runs. The device code and the tokens
// never leave the agent; the user code is what the user types anyway.
type LoginStatus struct {
	ID      string `json:"id"`
	Profile string `json:"profile"`
	Flow    string `json:"flow"`
	State   string `json:"state"`
	// Joined: the profile's sign-in was already running, and this caller
	// joined it.
	Joined    bool      `json:"joined,omitempty"`
	StartedAt time.Time `json:"started_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// ClientID is the client the sign-in is for; ClientName what
	// Keycloak's consent page calls it, where the profile says (client_name).
	ClientID   string `json:"client_id,omitempty"`
	ClientName string `json:"client_name,omitempty"`
	// Device flow.
	VerificationURI         string `json:"verification_uri,omitempty"`
	VerificationURIComplete string `json:"verification_uri_complete,omitempty"`
	UserCode                string `json:"user_code,omitempty"`
	Interval                int    `json:"interval,omitempty"` // seconds
	// QRSVG is an SVG image of the QR code of VerificationURIComplete
	// (start and GET answers, not status).
	QRSVG string `json:"qr_svg,omitempty"`
	// Browser flow.
	AuthorizationURL string `json:"authorization_url,omitempty"`
	// Identity is set once State is done, with where the offline token is
	// kept and, when the realm sets one, the seconds until its session's
	// fixed end (0: none; it lives while it is used).
	Identity         *LoginIdentity `json:"identity,omitempty"`
	KeptIn           string         `json:"kept_in,omitempty"`
	OfflineExpiresIn int64          `json:"offline_expires_in,omitempty"`
	Error            string         `json:"error,omitempty"`
	Hint             string         `json:"hint,omitempty"`
}

// LaunchResponse is a one-time loopback link that redirects this user's
// browser, once, to a pending sign-in's page (agent/launcher). Unlike the
// page's own URL, it is safe on a process's argv.
type LaunchResponse struct {
	URL string `json:"url"`
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
	// Source is the config file the profile comes from (the user's or
	// the system-wide one).
	Source string `json:"source,omitempty"`
	// Warnings name risky settings of the profile (an issuer reached in
	// the clear where the system can not tell who listens).
	Warnings []string `json:"warnings,omitempty"`
	// ForeignListeners are the issuer ports the offline token was not
	// sent to because another user listened there.
	ForeignListeners []ForeignListener `json:"foreign_listeners,omitempty"`
	// DPoPMode is the profile's configured DPoP mode: off, refresh, on or
	// auto (the default).
	DPoPMode string `json:"dpop_mode,omitempty"`
	// DPoPLogin is the mode the stored login is in (the one in force):
	// "refresh" (bound, Bearer access tokens), "on" (bound, DPoP access
	// tokens) or "off" (not bound); absent without a login.
	DPoPLogin string `json:"dpop_login,omitempty"`
	// DPoPKey is, for a bound login, what the agent found of its key:
	// "matches", "missing or another key", "the offline token is bound to
	// another key"; absent until the key is first used.
	DPoPKey string `json:"dpop_key,omitempty"`
	// DPoPNote says what to do when the login is not what the mode would
	// make (e.g. a login made before the mode: how to bind it).
	DPoPNote string `json:"dpop_note,omitempty"`
}

// ForeignListener is a loopback port kc-agent refused to send a token to
// in the clear, because another user (not root) listened there.
type ForeignListener struct {
	Addr  string    `json:"addr"`  // host:port
	Owner string    `json:"owner"` // e.g. "uid 65534"
	UID   int       `json:"uid"`
	Count int64     `json:"count"` // refusals so far
	Last  time.Time `json:"last"`
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
	Version     string    `json:"version"`
	PID         int       `json:"pid"`
	StartedAt   time.Time `json:"started_at"`
	Uptime      string    `json:"uptime"`
	Socket      string    `json:"socket"`
	ConfigPath  string    `json:"config_path"`
	ConfigError string    `json:"config_error,omitempty"`
	// SystemConfigError is why the system-wide config is ignored (the
	// user's own profiles keep serving).
	SystemConfigError string `json:"system_config_error,omitempty"`
	// LeftOutRoutes are system routes left out: they name a profile that
	// neither file defines.
	LeftOutRoutes []string `json:"left_out_routes,omitempty"`
	// SystemConfig is the system-wide file merged under ConfigPath, if any.
	SystemConfig string `json:"system_config,omitempty"`
	// Lock is the one-agent lock this agent holds ("" in tests).
	Lock string `json:"lock,omitempty"`
	// Autostarted: a client started this agent; it ends after IdleExit
	// (a Go duration) without clients, when that is set.
	Autostarted bool   `json:"autostarted,omitempty"`
	IdleExit    string `json:"idle_exit,omitempty"`
	UID         int    `json:"uid"`
	// SID is the agent's user on Windows, where UID is -1.
	SID      string          `json:"sid,omitempty"`
	Proxy    ProxyStatus     `json:"proxy"`
	Profiles []ProfileStatus `json:"profiles"`
	// SignIns are the sign-ins running now (or just ended).
	SignIns []LoginStatus `json:"sign_ins,omitempty"`
}

// ProxyStatus says whether the proxy runs and where. GET /v1/proxy answers
// it with URL (which carries the per-user proxy secret) filled in; the
// status answer leaves URL out.
type ProxyStatus struct {
	// Configured is false when the config has no routes and no proxy
	// section: then no proxy runs, by design.
	Configured bool   `json:"configured"`
	Running    bool   `json:"running"`
	Addr       string `json:"addr,omitempty"` // host:port of the main listener
	URL        string `json:"url,omitempty"`  // http://kc:<secret>@addr, only from /v1/proxy
	Error      string `json:"error,omitempty"`
	Hint       string `json:"hint,omitempty"`
	// Retrying: the proxy's address is taken, and the agent tries again in
	// the background (Error says who holds it, Hint what to do); the proxy
	// starts by itself once the address is free.
	Retrying bool `json:"retrying,omitempty"`
	// CABundle is the PEM file (system roots + the local CA) clients trust
	// when a route intercepts TLS; "" otherwise.
	CABundle string      `json:"ca_bundle,omitempty"`
	Routes   []RouteInfo `json:"routes"`
	// Refused counts requests the proxy turned away, by reason.
	Refused map[string]int64 `json:"refused,omitempty"`
	// Warnings name risky settings in use (e.g. a cleartext upstream).
	Warnings []string `json:"warnings,omitempty"`
	// WarningHints[i] is what to do about Warnings[i] ("" when the warning
	// says it).
	WarningHints []string `json:"warning_hints,omitempty"`
	// ForeignListeners are the upstream ports a token was not sent to in
	// the clear because another user listened there.
	ForeignListeners []ForeignListener `json:"foreign_listeners,omitempty"`
}

// RouteInfo is one configured route as clients use it.
type RouteInfo struct {
	Name     string `json:"name"`
	URL      string `json:"url"` // the local base URL, e.g. http://127.0.0.1:8421/warehouse
	Upstream string `json:"upstream"`
	Profile  string `json:"profile"`
	Source   string `json:"source,omitempty"` // the config file it comes from
}

// String never shows the proxy secret.
func (p ProxyStatus) String() string {
	return fmt.Sprintf("ProxyStatus{running=%v addr=%s}", p.Running, p.Addr)
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
	// CodeInvalidScope: Keycloak refused a scope the caller asked for. Only
	// that request fails; the profile keeps serving.
	CodeInvalidScope = "invalid_scope"
	// CodeRateLimited: too many sign-ins started; try again later.
	CodeRateLimited = "rate_limited"
	// CodeNotFound: no such sign-in (it ended a while ago, or never was),
	// or no such endpoint.
	CodeNotFound = "not_found"
	// CodeNoEndpoint: the agent has no such endpoint (an older agent; they
	// answered 404 bad_request).
	CodeNoEndpoint = "no_such_endpoint"
	// CodeTooLarge: the request body is over MaxRequestBody.
	CodeTooLarge = "too_large"
	// Codes only the proxy answers with.
	CodeNoRoute     = "no_route"
	CodeUpstream    = "upstream_error"
	CodeProxyAuth   = "proxy_auth_required"
	CodeUnsafePath  = "unsafe_path"
	CodeBrowser     = "browser_refused"
	CodeNotLoopback = "not_loopback"
	CodeProxyLoop   = "proxy_loop"
	CodeMisdirected = "misdirected"
)

// HTTPStatus is the one mapping from an error code to the HTTP status the
// socket API and the proxy answer with.
func HTTPStatus(code string) int {
	switch code {
	case CodeLoginRequired, CodeUnknown:
		return 401
	case CodeBadRequest, CodeInvalidScope, CodeUnsafePath:
		return 400
	case CodeForbidden, CodeBrowser, CodeNotLoopback, CodeProxyLoop:
		return 403
	case CodeNoRoute, CodeNotFound, CodeNoEndpoint:
		return 404
	case CodeRateLimited:
		return 429
	case CodeTooLarge:
		return 413
	case CodeProxyAuth:
		return 407
	case CodeMisdirected:
		return 421
	case CodeInternal:
		return 500
	case CodeUpstream:
		return 502
	}
	return 503 // unavailable, config_error: try again later
}

// Error is the typed error body: {"error": code, "message": ..., "hint": ...}.
// Status is the HTTP status a client received; servers leave it unset and
// WriteError answers with HTTPStatus(Code).
type Error struct {
	Code    string `json:"error"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	Status  int    `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// ErrUnreachable means no agent answers on the socket.
var ErrUnreachable = errors.New("agent unreachable")
