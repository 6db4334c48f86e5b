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
	"time"
)

// Client talks to the agent over its socket.
type Client struct {
	Path string
	hc   *http.Client
}

// NewClient returns a client for the default socket path.
func NewClient() (*Client, error) {
	p, err := SocketPath()
	if err != nil {
		return nil, err
	}
	return NewClientAt(p), nil
}

// NewClientAt returns a client for the socket at path.
func NewClientAt(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:          1,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true,
	}
	return &Client{Path: path, hc: &http.Client{Transport: tr}}
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

// Token asks for an access token.
func (c *Client) Token(ctx context.Context, req TokenRequest) (*TokenResponse, error) {
	var out TokenResponse
	if err := c.do(ctx, http.MethodPost, PathToken, req, &out); err != nil {
		return nil, err
	}
	if out.AccessToken == "" {
		return nil, &Error{Code: CodeInternal, Message: "the agent answered without a token"}
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

// Reload tells the agent a profile's login changed ("" for all).
func (c *Client) Reload(ctx context.Context, profile string) error {
	return c.do(ctx, http.MethodPost, PathReload, ReloadRequest{Profile: profile}, nil)
}
