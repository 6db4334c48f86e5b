package oidc

import (
	"github.com/kc-agent/kc-agent/internal/idptext"

	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"golang.org/x/oauth2"
)

// DevicePoll shapes how a device sign-in polls the token endpoint
// (RFC 8628 section 3.5). Tests set it; the agent runs DefaultDevicePoll.
type DevicePoll struct {
	// Margin is added to the server's interval. Keycloak compares poll
	// times in whole seconds: polling at exactly 5.000 s got slow_down on
	// every other poll from Keycloak 26.7, at 5.3 s never.
	Margin time.Duration
	// SlowDown is added to the wait on each slow_down ("MUST be increased
	// by 5 seconds"); a later authorization_pending brings the wait back
	// to the interval, so one late poll does not slow the sign-in for good.
	SlowDown time.Duration
	// MaxWait bounds the wait after network errors and 5xx answers, which
	// double it (section 3.5: back off on a connection timeout).
	MaxWait time.Duration
}

// DefaultDevicePoll is the polling a real sign-in uses (docs/BENCHMARKS.md
// measures it against Keycloak).
var DefaultDevicePoll = DevicePoll{Margin: 500 * time.Millisecond, SlowDown: 5 * time.Second, MaxWait: time.Minute}

// DeviceLogin is a device authorization grant (RFC 8628) waiting for the
// user's approval.
type DeviceLogin struct {
	VerificationURI         string
	VerificationURIComplete string
	UserCode                string
	Expiry                  time.Time
	Interval                time.Duration
	// Poll is how Wait polls; the zero value means DefaultDevicePoll.
	Poll DevicePoll

	c          *Client
	cfg        *oauth2.Config
	deviceCode string
	verifier   string
}

// StartDevice asks for a device code, with PKCE parameters (Keycloak
// requires them when the client enforces PKCE). The identity provider's
// strings are data: the verification links must be https (or the
// issuer's own loopback origin), and the user code is shown without
// control characters.
func (c *Client) StartDevice(ctx context.Context, scopes []string) (*DeviceLogin, error) {
	if c.meta.DeviceURL == "" {
		return nil, &Error{Kind: KindConfig, Msg: "the issuer announces no device authorization endpoint",
			Hint: "enable the OAuth 2.0 Device Authorization Grant on the client, or log in with a browser"}
	}
	d := &DeviceLogin{c: c, verifier: oauth2.GenerateVerifier(), cfg: c.oauth2Config(loginScopes(scopes), "")}
	da, err := d.cfg.DeviceAuth(c.ctx(ctx), oauth2.S256ChallengeOption(d.verifier))
	if err != nil {
		return nil, fromRetrieveError(err)
	}
	if err := CheckLink(c.Issuer, "verification_uri", da.VerificationURI); err != nil {
		return nil, err
	}
	if da.VerificationURIComplete != "" {
		if err := CheckLink(c.Issuer, "verification_uri_complete", da.VerificationURIComplete); err != nil {
			return nil, err
		}
	}
	d.deviceCode = da.DeviceCode
	d.VerificationURI, d.VerificationURIComplete, d.UserCode = da.VerificationURI, da.VerificationURIComplete, idptext.Printable(da.UserCode)
	d.Expiry, d.Interval = da.Expiry, time.Duration(da.Interval)*time.Second
	if d.Interval <= 0 {
		d.Interval = 5 * time.Second // RFC 8628 section 3.2's default
	}
	return d, nil
}

// Wait polls until the user approves or denies, the code expires or ctx
// ends, then verifies the tokens.
func (d *DeviceLogin) Wait(ctx context.Context) (*LoginResult, error) {
	if !d.Expiry.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Expiry)
		defer cancel()
	}
	tok, err := d.poll(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			if !d.Expiry.IsZero() && !time.Now().Before(d.Expiry) {
				return nil, classifyTokenError(400, "expired_token", "")
			}
			return nil, &Error{Kind: KindDenied, Msg: "timed out waiting for the device login", Hint: "run `kc-agent login --device` again"}
		}
		if errors.Is(err, context.Canceled) {
			return nil, &Error{Kind: KindDenied, Msg: "login cancelled"}
		}
		return nil, err
	}
	return d.c.finishLogin(ctx, tok, "")
}

// poll asks the token endpoint for the device code's tokens at the
// interval (plus the margin) until it answers with tokens or a final
// error. It is written here rather than taken from x/oauth2, whose loop
// polls at exactly the interval (Keycloak then answers slow_down) and
// keeps every slow_down's 5 s for the rest of the sign-in.
func (d *DeviceLogin) poll(ctx context.Context) (*Token, error) {
	p := d.Poll
	if p == (DevicePoll{}) {
		p = DefaultDevicePoll
	}
	form := url.Values{
		"grant_type":    {"urn:ietf:params:oauth:grant-type:device_code"},
		"client_id":     {d.c.ClientID},
		"device_code":   {d.deviceCode},
		"code_verifier": {d.verifier},
	}
	wait := d.Interval + p.Margin
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		tok, err := d.c.tokenGrant(ctx, form)
		if err == nil {
			return tok, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait, err = p.next(d.Interval, wait, err)
		if err != nil {
			return nil, err
		}
		t.Reset(wait)
	}
}

// next is the wait before the next poll after a poll failed with err
// (having waited last), or err when the sign-in is over.
func (p DevicePoll) next(interval, last time.Duration, err error) (time.Duration, error) {
	var oe *Error
	errors.As(err, &oe)
	switch {
	case oe != nil && oe.Code == "authorization_pending":
		return interval + p.Margin, nil
	case oe != nil && oe.Code == "slow_down":
		return last + p.SlowDown, nil
	case KindOf(err) == KindTransient:
		return min(2*last, max(p.MaxWait, interval+p.Margin)), nil
	}
	return 0, err
}

// LoginDevice runs the device authorization grant (RFC 8628).
func (c *Client) LoginDevice(ctx context.Context, opts LoginOptions) (*LoginResult, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.timeout())
	defer cancel()
	d, err := c.StartDevice(ctx, opts.Scopes)
	if err != nil {
		return nil, err
	}
	if opts.ShowDeviceCode != nil {
		opts.ShowDeviceCode(d.VerificationURI, d.UserCode, d.VerificationURIComplete)
	} else {
		fmt.Fprintf(opts.status(), "kc-agent: to sign in, visit %s and enter the code %s\n", d.VerificationURI, d.UserCode)
	}
	if opts.OpenURL != nil && d.VerificationURIComplete != "" {
		// The complete link carries the user code: only a launcher link
		// goes on the opener's argv.
		if closeLink, err := openLink(opts.OpenURL, d.VerificationURIComplete, d.Expiry); err == nil {
			defer closeLink()
		}
	}
	return d.Wait(ctx)
}
