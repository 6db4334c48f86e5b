package ipc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// SkewError: the running agent does not have an endpoint this client
// uses, and its /v1/health says it runs another version.
type SkewError struct {
	Agent, Client string // versions
	Method, Path  string
}

func (e *SkewError) Error() string {
	return fmt.Sprintf("the running agent (kc-agent %s) does not know %s %s: it is another version than this kc-agent (%s)", e.Agent, e.Method, e.Path, e.Client)
}

// NoSuchEndpoint tells whether err is the agent's answer to a path it has
// no handler for: 404 with code bad_request, which only the agent's
// catch-all sends (an endpoint's own "not found" is code not_found). The
// message is prose for people, never matched.
func NoSuchEndpoint(err error) bool {
	var ae *Error
	// (Agents before no_such_endpoint answered 404 bad_request.)
	return errors.As(err, &ae) && (ae.Code == CodeNoEndpoint || ae.Status == http.StatusNotFound && ae.Code == CodeBadRequest)
}

// AgentVersion is the running agent's version, from /v1/health.
func (c *Client) AgentVersion(ctx context.Context) (string, error) {
	var out struct {
		Version string `json:"version"`
	}
	err := c.do(ctx, http.MethodGet, PathHealth, nil, &out)
	return out.Version, err
}

// Skew turns err into a *SkewError when the agent had no handler for
// method path (NoSuchEndpoint) and /v1/health reports a version other than
// client's; otherwise it returns err as it is (the same version missing
// an endpoint is a bug to report, not an agent to restart). The Python
// client keeps the same rule (_client._skew).
func (c *Client) Skew(ctx context.Context, err error, client, method, path string) error {
	if !NoSuchEndpoint(err) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	agent, herr := c.AgentVersion(ctx)
	if herr != nil || agent == client {
		return err
	}
	if agent == "" {
		agent = "of unknown version"
	}
	return &SkewError{Agent: agent, Client: client, Method: method, Path: path}
}
