// Package oidc talks to the identity provider: discovery, the browser
// (PKCE) and device logins, refresh, logout and revocation, with errors
// classified the way kc-agent needs (login required, configuration,
// transient).
package oidc

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kc-agent/kc-agent/agent/cleartext"
	"github.com/kc-agent/kc-agent/agent/config"
)

// RequestTimeout bounds every single request to the provider.
const RequestTimeout = 20 * time.Second

// Client is a public OIDC client of one issuer.
type Client struct {
	Issuer   string
	ClientID string
	HTTP     *http.Client

	provider *gooidc.Provider
	meta     metadata
	key      crypto.Signer // WithDPoP
}

type metadata struct {
	Issuer      string `json:"issuer"`
	AuthURL     string `json:"authorization_endpoint"`
	TokenURL    string `json:"token_endpoint"`
	DeviceURL   string `json:"device_authorization_endpoint"`
	EndSession  string `json:"end_session_endpoint"`
	RevokeURL   string `json:"revocation_endpoint"`
	UserInfoURL string `json:"userinfo_endpoint"`
	// Named only so the agent signs no proof for them (GrantEndpoints).
	IntrospectURL string            `json:"introspection_endpoint"`
	PARURL        string            `json:"pushed_authorization_request_endpoint"`
	CIBAURL       string            `json:"backchannel_authentication_endpoint"`
	MTLSAliases   map[string]string `json:"mtls_endpoint_aliases"`
	CodeMethods   []string          `json:"code_challenge_methods_supported"`
	DPoPAlgs      []string          `json:"dpop_signing_alg_values_supported"`
}

// Options are a profile's choices about its provider (config.Profile).
type Options struct {
	// UnsafeCleartext sends to an http:// loopback issuer even where the
	// system can not tell who listens on the port. Elsewhere every
	// connection to such an issuer is checked first (agent/cleartext).
	UnsafeCleartext bool
	// AllowForeignEndpoints accepts endpoints outside the issuer's origin.
	AllowForeignEndpoints bool
}

// ForProfile is New with the profile's issuer, client and options.
func ForProfile(ctx context.Context, p config.Profile) (*Client, error) {
	p = p.WithDefaults()
	return New(ctx, p.Issuer, p.ClientID, Options{UnsafeCleartext: p.UnsafeCleartextIssuer, AllowForeignEndpoints: p.AllowForeignEndpoints})
}

// NewHTTPClient is the client used for the provider: HTTPS_PROXY/NO_PROXY
// honoured, every step under a timeout, and plain-http requests (a
// loopback issuer) only over connections whose other end is this user's
// or root's. dial replaces the dialer (tests); nil is the usual one.
func NewHTTPClient(opts Options, dial cleartext.DialFunc) *http.Client {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	t.DialContext = dial
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = RequestTimeout
	t.MaxIdleConnsPerHost = 4
	plain := t.Clone()
	// Cleartext goes to loopback only, never through a proxy, and only
	// once the listener is known to be the user's.
	plain.Proxy = nil
	plain.DialContext = cleartext.Dial(dial, opts.UnsafeCleartext)
	return &http.Client{
		Transport: &cleartext.SplitTransport{Cleartext: plain, Other: t},
		Timeout:   RequestTimeout,
		// The provider never needs a redirect followed for these calls, and
		// following one could send a refresh token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type discoveryEntry struct {
	client *Client
	at     time.Time
}

var (
	discoveryMu    sync.Mutex
	discoveryCache = map[string]discoveryEntry{}
)

// DiscoveryTTL is how long discovery results are reused.
const DiscoveryTTL = time.Hour

// New discovers the issuer (cached for DiscoveryTTL per issuer, client and
// options).
func New(ctx context.Context, issuer, clientID string, opts Options) (*Client, error) {
	key := fmt.Sprintf("%s\x00%s\x00%v", issuer, clientID, opts)
	discoveryMu.Lock()
	e, ok := discoveryCache[key]
	discoveryMu.Unlock()
	if ok && time.Since(e.at) < DiscoveryTTL {
		return e.client, nil
	}
	c, err := discover(ctx, issuer, clientID, opts, NewHTTPClient(opts, nil))
	if err != nil {
		return nil, err
	}
	discoveryMu.Lock()
	discoveryCache[key] = discoveryEntry{client: c, at: time.Now()}
	discoveryMu.Unlock()
	return c, nil
}

// ForgetDiscovery drops cached discovery results (tests, reloads).
func ForgetDiscovery() {
	discoveryMu.Lock()
	discoveryCache = map[string]discoveryEntry{}
	discoveryMu.Unlock()
}

func discover(ctx context.Context, issuer, clientID string, opts Options, hc *http.Client) (*Client, error) {
	issuer = strings.TrimRight(issuer, "/")
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	ctx = gooidc.ClientContext(ctx, hc)
	p, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, classifyDiscovery(issuer, err)
	}
	c := &Client{Issuer: issuer, ClientID: clientID, HTTP: hc, provider: p}
	if err := p.Claims(&c.meta); err != nil {
		return nil, &Error{Kind: KindConfig, Msg: "the issuer's discovery document is not valid JSON", Err: err}
	}
	if c.meta.TokenURL == "" {
		return nil, &Error{Kind: KindConfig, Msg: "the issuer's discovery document names no token endpoint"}
	}
	if err := checkEndpoints(issuer, c.meta, opts.AllowForeignEndpoints); err != nil {
		return nil, err
	}
	return c, nil
}

// checkEndpoints refuses a discovery document that would send tokens
// away from the issuer: every endpoint kc-agent posts a token or code to
// must have the issuer's scheme, host and port (Keycloak's always do).
// With allowForeign, other origins pass, but never plain http off
// loopback.
func checkEndpoints(issuer string, m metadata, allowForeign bool) error {
	iss, err := url.Parse(issuer)
	if err != nil {
		return &Error{Kind: KindConfig, Msg: fmt.Sprintf("%q is not a URL", issuer)}
	}
	for _, ep := range []struct{ name, url string }{
		{"token_endpoint", m.TokenURL},
		{"device_authorization_endpoint", m.DeviceURL},
		{"revocation_endpoint", m.RevokeURL},
		{"end_session_endpoint", m.EndSession},
		{"userinfo_endpoint", m.UserInfoURL},
	} {
		if ep.url == "" {
			continue
		}
		u, err := url.Parse(ep.url)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return &Error{Kind: KindConfig, Msg: fmt.Sprintf("the issuer's discovery document names an invalid %s", ep.name)}
		}
		if config.OriginKey(u) == config.OriginKey(iss) {
			continue
		}
		if !allowForeign {
			return &Error{Kind: KindConfig,
				Msg:  fmt.Sprintf("the issuer's discovery document puts its %s at %s, outside the issuer's own %s; kc-agent sends no token there", ep.name, config.OriginKey(u), config.OriginKey(iss)),
				Hint: "check that the issuer URL is right and the server is the one you expect; if your identity provider really serves this endpoint elsewhere, set allow_foreign_endpoints: true on the profile"}
		}
		if u.Scheme == "http" && !config.IsLoopbackHost(u.Host) {
			return &Error{Kind: KindConfig, Msg: fmt.Sprintf("the issuer's discovery document puts its %s at %s: plain http off this machine, which kc-agent never uses", ep.name, config.OriginKey(u))}
		}
	}
	return nil
}

// refusedHint is what to do when a loopback issuer's port is another
// user's: the user's own forwarder is down.
const refusedHint = "another user's program holds the issuer's port (has your port-forward stopped?); restart it on that port: kc-agent retries by itself"

// unreachable classifies a failed request to the provider: a refusal to
// talk to another user's port names that user; anything else is network
// trouble. Both are transient: the login is still good.
func unreachable(what string, err error) *Error {
	var unverified *cleartext.UnverifiedError
	switch {
	case cleartext.Refused(err) != nil:
		return &Error{Kind: KindTransient, Msg: "kc-agent did not contact the " + what, Hint: refusedHint, Err: cleartext.Refused(err)}
	case errors.As(err, &unverified):
		return &Error{Kind: KindTransient, Msg: "kc-agent did not contact the " + what, Hint: "kc-agent retries by itself", Err: unverified}
	}
	return &Error{Kind: KindTransient, Msg: "can not reach the " + what, Hint: "kc-agent retries by itself; check the network if this persists", Err: scrubURLError(err)}
}

func classifyDiscovery(issuer string, err error) error {
	msg := err.Error()
	var unverified *cleartext.UnverifiedError
	switch {
	case cleartext.Refused(err) != nil || errors.As(err, &unverified):
		return unreachable("issuer "+issuer, err)
	case strings.Contains(msg, "issuer did not match"):
		return &Error{Kind: KindConfig, Msg: fmt.Sprintf("the server at %s calls itself by another issuer URL", issuer),
			Hint: "use exactly the issuer URL the server announces (same scheme, host, port and path)", Err: err}
	case strings.HasPrefix(msg, "404") || strings.Contains(msg, ": 404"):
		return &Error{Kind: KindConfig, Msg: fmt.Sprintf("no OIDC discovery document at %s/.well-known/openid-configuration", issuer),
			Hint: "check the realm name in the issuer URL (e.g. https://sso.example.com/realms/myrealm)", Err: err}
	case isNetErr(err) || strings.HasPrefix(msg, "5"):
		return &Error{Kind: KindTransient, Msg: fmt.Sprintf("can not reach the issuer %s", issuer),
			Hint: "check the network (and HTTPS_PROXY/NO_PROXY) and that the server is up", Err: err}
	}
	return &Error{Kind: KindConfig, Msg: fmt.Sprintf("discovery of %s failed", issuer), Err: err}
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.As(err, &ue) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF)
}

func (c *Client) oauth2Config(scopes []string, redirect string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.ClientID,
		Endpoint: oauth2.Endpoint{
			AuthURL:       c.meta.AuthURL,
			TokenURL:      c.meta.TokenURL,
			DeviceAuthURL: c.meta.DeviceURL,
			AuthStyle:     oauth2.AuthStyleInParams,
		},
		RedirectURL: redirect,
		Scopes:      scopes,
	}
}

func (c *Client) ctx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.HTTP)
}

// Token is the useful part of a token response.
type Token struct {
	AccessToken      string
	RefreshToken     string
	IDToken          string
	TokenType        string
	ExpiresIn        time.Duration
	Expiry           time.Time // wall clock, monotonic reading stripped
	RefreshExpiresIn time.Duration
	Scope            string
}

// String never shows a token.
func (t *Token) String() string {
	return fmt.Sprintf("Token{type=%s expires_in=%s scope=%q}", t.TokenType, t.ExpiresIn, t.Scope)
}

type tokenResponse struct {
	AccessToken      string      `json:"access_token"`
	RefreshToken     string      `json:"refresh_token"`
	IDToken          string      `json:"id_token"`
	TokenType        string      `json:"token_type"`
	ExpiresIn        json.Number `json:"expires_in"`
	RefreshExpiresIn json.Number `json:"refresh_expires_in"`
	Scope            string      `json:"scope"`
	Error            string      `json:"error"`
	ErrorDescription string      `json:"error_description"`
}

func fromOAuth2(t *oauth2.Token, received time.Time) *Token {
	tok := &Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType}
	if s, ok := t.Extra("id_token").(string); ok {
		tok.IDToken = s
	}
	if s, ok := t.Extra("scope").(string); ok {
		tok.Scope = s
	}
	if n, ok := t.Extra("refresh_expires_in").(float64); ok {
		tok.RefreshExpiresIn = time.Duration(n) * time.Second
	}
	if t.ExpiresIn > 0 {
		tok.ExpiresIn = time.Duration(t.ExpiresIn) * time.Second
	} else if !t.Expiry.IsZero() {
		tok.ExpiresIn = t.Expiry.Sub(received)
	}
	tok.Expiry = received.Add(tok.ExpiresIn).Round(0)
	return tok
}

// Refresh trades a refresh (offline) token for new tokens. scopes, when
// given, narrow the access token (they must be a subset of the login's).
// It posts the grant itself: golang.org/x/oauth2 can not send a scope with a
// refresh, and its errors would hide Keycloak's error_description.
func (c *Client) Refresh(ctx context.Context, refreshToken string, scopes []string) (*Token, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"client_id":     {c.ClientID},
		"refresh_token": {refreshToken},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	return c.tokenGrant(ctx, form)
}

// tokenGrant posts a grant to the token endpoint and reads the answer: a
// token, or the provider's error classified (its code kept, for the
// device flow's authorization_pending and slow_down).
func (c *Client) tokenGrant(ctx context.Context, form url.Values) (*Token, error) {
	received := time.Now()
	status, body, err := c.post(ctx, c.meta.TokenURL, form)
	if err != nil {
		return nil, unreachable("token endpoint", err)
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	if status != http.StatusOK || tr.Error != "" {
		return nil, classifyTokenError(status, tr.Error, tr.ErrorDescription)
	}
	if jsonErr != nil || tr.AccessToken == "" {
		return nil, &Error{Kind: KindTransient, Msg: "the token endpoint answered 200 without a usable token response"}
	}
	tok := &Token{
		AccessToken:  tr.AccessToken,
		RefreshToken: tr.RefreshToken,
		IDToken:      tr.IDToken,
		TokenType:    tr.TokenType,
		Scope:        tr.Scope,
	}
	if n, err := tr.ExpiresIn.Int64(); err == nil {
		tok.ExpiresIn = time.Duration(n) * time.Second
	}
	if n, err := tr.RefreshExpiresIn.Int64(); err == nil {
		tok.RefreshExpiresIn = time.Duration(n) * time.Second
	}
	tok.Expiry = received.Add(tok.ExpiresIn).Round(0)
	return tok, nil
}

// maxResponse bounds what is read from the provider.
const maxResponse = 1 << 20

func (c *Client) post(ctx context.Context, endpoint string, form url.Values) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, scrubURLError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, body, nil
}

// scrubURLError drops the request from a *url.Error: its text is harmless
// today (POST bodies are not in it), but keep it that way on purpose.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redactURL(ue.URL), ue.Err)
	}
	return err
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(url)"
	}
	u.RawQuery = ""
	u.User = nil
	return u.String()
}

// Logout ends the one offline session the token belongs to.
func (c *Client) Logout(ctx context.Context, refreshToken string) error {
	if c.meta.EndSession == "" {
		return &Error{Kind: KindConfig, Msg: "the issuer announces no end_session_endpoint; the session can not be ended remotely"}
	}
	form := url.Values{"client_id": {c.ClientID}, "refresh_token": {refreshToken}}
	status, body, err := c.post(ctx, c.meta.EndSession, form)
	if err != nil {
		return unreachable("logout endpoint", err)
	}
	if status == http.StatusNoContent || status == http.StatusOK {
		return nil
	}
	var tr tokenResponse
	_ = json.Unmarshal(body, &tr)
	return c.logoutError(status, tr.Error, tr.ErrorDescription)
}

// Revoke revokes the token (RFC 7009). For a Keycloak offline token this
// ends all offline sessions of the user for this client, everywhere.
func (c *Client) Revoke(ctx context.Context, refreshToken string) error {
	if c.meta.RevokeURL == "" {
		return &Error{Kind: KindConfig, Msg: "the issuer announces no revocation_endpoint"}
	}
	form := url.Values{"client_id": {c.ClientID}, "token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	status, body, err := c.post(ctx, c.meta.RevokeURL, form)
	if err != nil {
		return unreachable("revocation endpoint", err)
	}
	if status == http.StatusOK || status == http.StatusNoContent {
		return nil
	}
	var tr tokenResponse
	_ = json.Unmarshal(body, &tr)
	return classifyTokenError(status, tr.Error, tr.ErrorDescription)
}
