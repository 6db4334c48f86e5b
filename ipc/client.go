package ipc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kc-agent/kc-agent/internal/bearer"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// Client talks to the agent over its socket.
type Client struct {
	Path string
	hc   *http.Client

	mu     sync.Mutex
	probed net.Conn // the verified connection discovery opened, used first
}

// NewClient returns a client for this user's agent: the first discovery
// candidate (see ipc/discovery) where a verified agent answers, else the first
// candidate, where an agent would be started. A socket or directory owned
// by someone else is an *UntrustedError.
func NewClient() (*Client, error) {
	cands, err := discovery.Candidates()
	if err != nil {
		return nil, err
	}
	return clientFor(cands)
}

func clientFor(cands []string) (*Client, error) {
	for i, p := range cands {
		conn, err := dialVerified(context.Background(), p, time.Second)
		switch {
		case err == nil:
			c := NewClientAt(p)
			c.probed = conn // the first request reuses it: one connect per call
			return c, nil
		case errors.Is(err, discovery.ErrUntrusted) && i == 0:
			// The place where this user's agent belongs is someone
			// else's: refuse, loudly.
			return nil, err
		}
		// A later place someone else planted is never contacted; the
		// first one (ours) is where an agent is started. doctor names it.
	}
	return NewClientAt(cands[0]), nil
}

// FindRunning returns a client for a verified agent at any well-known
// place, KC_AGENT_SOCK's and the default ones alike, or nil when none
// answers. `kc-agent run` asks it before starting a second agent.
func FindRunning(ctx context.Context) *Client {
	env, err := discovery.CurrentEnv()
	if err != nil {
		return nil
	}
	places := discovery.CandidatesFor(env)
	if env.Sock != "" {
		env.Sock = ""
		places = append(places, discovery.CandidatesFor(env)...)
	}
	for _, p := range places {
		c := NewClientAt(p)
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.Health(hctx)
		cancel()
		if err == nil {
			return c
		}
	}
	return nil
}

// NewClientAt returns a client for the socket at path. Every connection is
// verified before a request is written (dialVerified).
func NewClientAt(path string) *Client {
	c := &Client{Path: path}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c.mu.Lock()
			conn := c.probed
			c.probed = nil
			c.mu.Unlock()
			if conn != nil {
				return conn, nil
			}
			return dialVerified(ctx, path, 0)
		},
		// One request per connection: a command makes one or two, and an
		// idle connection would make net/http log whatever bytes an agent
		// sends after an answer (a token, say) to stderr.
		DisableKeepAlives:     true,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true,
	}
	c.hc = &http.Client{Transport: tr}
	return c
}

// UnreachableError says no agent answered, and how to start one.
type UnreachableError struct {
	Path string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("no kc-agent answers at %s: %v", e.Path, e.Err)
}
func (e *UnreachableError) Unwrap() []error { return []error{ErrUnreachable, e.Err} }

// Hint tells the user how to get an agent.
func (e *UnreachableError) Hint() string {
	return "start it with `kc-agent run` (or `kc-agent service install`), or let `kc-agent token` autostart it"
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+Host+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *discovery.UntrustedError
		if errors.As(err, &ue) {
			return ue
		}
		if errors.Is(err, os.ErrNotExist) {
			what := "no socket"
			if discovery.IsPipe(c.Path) {
				what = "no such pipe"
			}
			return &UnreachableError{Path: c.Path, Err: errors.New(what)}
		}
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return &UnreachableError{Path: c.Path, Err: oe.Err}
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("the agent did not answer in time: %w", err)
		}
		return &UnreachableError{Path: c.Path, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("reading the agent's answer: %w", err)
	}
	if err := checkKeys(data, answerKeys(out)); errors.Is(err, ErrAmbiguousAnswer) {
		return err
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Code == "" {
			e.Code, e.Message = CodeInternal, fmt.Sprintf("the agent answered HTTP %d", resp.StatusCode)
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("the agent's answer is not valid JSON: %w", err)
		}
	}
	return nil
}

// Health checks that an agent answers.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, PathHealth, nil, nil)
}

// Token asks for an access token (or, with req.Type "id", an ID token).
func (c *Client) Token(ctx context.Context, req TokenRequest) (*TokenResponse, error) {
	var out TokenResponse
	err := c.do(ctx, http.MethodPost, PathToken, req, &out)
	// An agent from before ID tokens refuses the type field (or, were it
	// lenient, would answer an access token).
	const older = "the running agent is older than this kc-agent: restart it (kc-agent service restart, or stop it and run the command again)"
	var ae *Error
	if req.Type == TokenTypeID && errors.As(err, &ae) && ae.Code == CodeBadRequest && strings.Contains(ae.Message, `unknown field "type"`) {
		return nil, &Error{Code: CodeInternal, Status: ae.Status, Message: "the agent does not serve ID tokens", Hint: older}
	}
	if err != nil {
		return nil, err
	}
	if req.Type == TokenTypeID && out.IDToken == "" {
		return nil, &Error{Code: CodeInternal, Message: "the agent answered without an ID token", Hint: older}
	}
	if out.Token() == "" || (req.Type != TokenTypeID && out.AccessToken == "") {
		return nil, &Error{Code: CodeInternal, Message: "the agent answered without a token"}
	}
	// Tokens are printed into shells, header lines and git's line
	// protocol: one that is not an RFC 6750 token (a quote, a space, a
	// line break, from the identity provider or a broken agent) is never
	// handed on.
	if !bearer.IsToken(out.Token()) || !bearer.IsToken(out.TokenType) {
		return nil, &Error{Code: CodeInternal, Message: fmt.Sprintf("the agent answered a token (or token type) with characters a bearer token can not have (%d bytes); refusing to use it", len(out.Token())),
			Hint: "check the identity provider's tokens (kc-agent status shows the issuer)"}
	}
	return &out, nil
}

// Status asks for the agent's status.
func (c *Client) Status(ctx context.Context) (*StatusResponse, error) {
	var out StatusResponse
	if err := c.do(ctx, http.MethodGet, PathStatus, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Proxy asks whether the agent's proxy runs, where, and with which routes.
func (c *Client) Proxy(ctx context.Context) (*ProxyStatus, error) {
	var out ProxyStatus
	if err := c.do(ctx, http.MethodGet, PathProxy, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Reload tells the agent a profile's login changed ("" for all).
func (c *Client) Reload(ctx context.Context, profile string) error {
	return c.do(ctx, http.MethodPost, PathReload, ReloadRequest{Profile: profile}, nil)
}

// StartLogin asks the agent to sign in a configured profile (or join the
// sign-in that runs for it).
func (c *Client) StartLogin(ctx context.Context, req LoginRequest) (*LoginStatus, error) {
	var out LoginStatus
	if err := c.do(ctx, http.MethodPost, PathLogin, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LoginStatus reports on a sign-in, waiting up to wait (at most
// MaxLoginWait) for it to end.
func (c *Client) LoginStatus(ctx context.Context, id string, wait time.Duration) (*LoginStatus, error) {
	var out LoginStatus
	path := PathLogin + "/" + url.PathEscape(id)
	if wait > 0 {
		path += "?wait=" + wait.String()
	}
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Logout ends a profile's login: the agent deletes the stored token and
// ends the session at the provider.
func (c *Client) Logout(ctx context.Context, req LogoutRequest) (*LogoutResponse, error) {
	var out LogoutResponse
	if err := c.do(ctx, http.MethodPost, PathLogout, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LaunchLogin asks for a one-time launcher link to a pending sign-in's
// page: open that, never the page's URL, with a browser opener.
func (c *Client) LaunchLogin(ctx context.Context, id string) (string, error) {
	var out LaunchResponse
	if err := c.do(ctx, http.MethodPost, PathLogin+"/"+url.PathEscape(id)+"/launch", nil, &out); err != nil {
		return "", err
	}
	return out.URL, nil
}

// CancelLogin cancels a sign-in.
func (c *Client) CancelLogin(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, PathLogin+"/"+url.PathEscape(id), nil, nil)
}
