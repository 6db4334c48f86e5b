// Package cleartext guards what kc-agent sends without TLS. Plain http is
// allowed only to loopback (a local dev server behind a route, a Keycloak
// behind `kubectl port-forward`), but every local user can listen on
// loopback: a port the user's server left free is anyone's. So before the
// first byte of a cleartext request that carries a token, the connection's
// other end is looked up (internal/peer), and the request goes out only
// when it belongs to the agent's user (root only with the opt-in; see Check).
//
// TLS to loopback needs no such check: the certificate says who answers.
package cleartext

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/kc-agent/kc-agent/internal/loopback"
	"github.com/kc-agent/kc-agent/internal/peer"
)

// RefusedError: another user, or root without the opt-in, listens at Addr.
type RefusedError struct {
	Addr  string // host:port, as dialed
	Owner peer.Owner
}

func (e *RefusedError) Error() string {
	if e.Owner.Superuser() {
		return fmt.Sprintf("%s is served by %s, which may hand its connections to another user: kc-agent sends nothing there in the clear without unsafe_cleartext_issuer or unsafe_cleartext_upstream", e.Addr, e.Owner)
	}
	return fmt.Sprintf("%s is served by %s, not by you: kc-agent sends nothing there in the clear", e.Addr, e.Owner)
}

// UnverifiedError: who listens at Addr could not be found out.
type UnverifiedError struct {
	Addr string
	Err  error
}

func (e *UnverifiedError) Error() string {
	return fmt.Sprintf("can not tell who listens on %s (%v): kc-agent sends nothing there in the clear", e.Addr, e.Err)
}

func (e *UnverifiedError) Unwrap() error { return e.Err }

// Check returns nil when c's other end is not on loopback, or belongs to
// this user. It is the one rule for a token in the clear, and
// allowUnknown (a profile's unsafe_cleartext_issuer, a route's
// unsafe_cleartext_upstream) has one meaning everywhere: it lets c through
// where its owner can not be named (peer.ErrUnsupported, or
// ErrNoOwner: no owning process, as Wine 8 says of every socket it did not
// create), or where root (LocalSystem) owns it. Never where another known
// user does.
//
// Root is not trusted by default: a socket root made and handed to a
// service of another user (socket activation with User=, inetd,
// bind-then-setuid) reports uid 0 until that service accepts, so a check
// that trusted root would race the accept (the Python client,
// kc_agent_client._connguard, keeps the same rule).
func Check(c net.Conn, allowUnknown bool) error {
	remote, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok || !remote.IP.IsLoopback() {
		return nil
	}
	o, err := peer.TCP(c)
	return decide(remote.String(), o, err, func() (peer.Owner, error) { return peer.TCPListener(remote) }, peer.Owner.Self, allowUnknown)
}

// decide is Check's rule, given the owner lookup's answer, a way to ask
// who listens (for a root-owned connection) and who is "you".
func decide(addr string, o peer.Owner, err error, listener func() (peer.Owner, error), self func(peer.Owner) bool, allowUnknown bool) error {
	switch {
	case (errors.Is(err, peer.ErrUnsupported) || errors.Is(err, peer.ErrNoOwner)) && allowUnknown:
		return nil
	case err != nil:
		return &UnverifiedError{Addr: addr, Err: err}
	case self(o):
		return nil
	case !o.Superuser():
		return &RefusedError{Addr: addr, Owner: o}
	}
	// Linux also reports uid 0 for a connection the kernel has not
	// finished handing to the listener yet (a request socket) or has
	// already closed (time-wait): the user's own listener makes it theirs.
	if l, err := listener(); err == nil && self(l) {
		return nil
	}
	if allowUnknown {
		return nil
	}
	return &RefusedError{Addr: addr, Owner: o}
}

// DialFunc is the shape of net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dial wraps dial: a connection it opens to a loopback address is checked
// before it is returned, and closed, unused, when it is refused. A name
// ("localhost") is tried address by address, so that another user on
// 127.0.0.1 does not stand in for the user's own server on ::1.
func Dial(dial DialFunc, allowUnknown bool) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || net.ParseIP(host) != nil {
			return dialChecked(ctx, dial, network, addr, allowUnknown)
		}
		ips, err := resolve(ctx, host)
		if err != nil {
			return nil, err
		}
		var first error
		for _, ip := range ips {
			c, err := dialChecked(ctx, dial, network, net.JoinHostPort(ip.String(), port), allowUnknown)
			if err == nil {
				return c, nil
			}
			if first == nil || Refused(first) == nil && Refused(err) != nil {
				first = err // a refusal says more than "connection refused"
			}
		}
		if first == nil {
			first = fmt.Errorf("%s resolves to no address", host)
		}
		return nil, first
	}
}

// resolve looks host up; "localhost" (any case, a trailing dot) is both
// loopback addresses whatever /etc/hosts says (RFC 6761, and what curl
// and so git do), so the agent reaches the server git would.
func resolve(ctx context.Context, host string) ([]net.IPAddr, error) {
	if loopback.Host(host) {
		return []net.IPAddr{{IP: net.IPv4(127, 0, 0, 1)}, {IP: net.IPv6loopback}}, nil
	}
	return net.DefaultResolver.LookupIPAddr(ctx, host)
}

func dialChecked(ctx context.Context, dial DialFunc, network, addr string, allowUnknown bool) (net.Conn, error) {
	c, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if err := Check(c, allowUnknown); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Probe is the check for a port some other program is about to send a
// token to (git): it dials every address host resolves to, checks who
// listens, and closes. Nil only when something listens and everything that
// does is trusted.
func Probe(ctx context.Context, host, port string, allowUnknown bool) error {
	ips, err := resolve(ctx, host)
	if err != nil {
		return err
	}
	var d net.Dialer
	reached := false
	for _, ip := range ips {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip.String(), port))
		if err != nil {
			continue // nobody there: nothing there gets the token either
		}
		reached = true
		err = Check(c, allowUnknown)
		c.Close()
		if err != nil {
			return err
		}
	}
	if !reached {
		return fmt.Errorf("nobody listens on %s", net.JoinHostPort(host, port))
	}
	return nil
}

// SplitTransport sends plain-http requests through Cleartext (whose dials
// are checked) and everything else through Other. The two keep separate
// connection pools, so a checked connection is never mixed with others.
type SplitTransport struct {
	Cleartext, Other http.RoundTripper
}

func (s *SplitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" {
		return s.Cleartext.RoundTrip(r)
	}
	return s.Other.RoundTrip(r)
}

// CloseIdleConnections closes both pools' idle connections.
func (s *SplitTransport) CloseIdleConnections() {
	for _, t := range []http.RoundTripper{s.Cleartext, s.Other} {
		if c, ok := t.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// LogEvery is how often a refusal to one destination is logged.
const LogEvery = 10 * time.Second

// Refusals counts refusals by destination, for status, and says when one
// is worth a log line (at most one per destination every LogEvery).
type Refusals struct {
	mu sync.Mutex
	m  map[string]*refusal
}

type refusal struct {
	owner          peer.Owner
	count, quiet   int64
	last, lastLine time.Time
}

// Add counts e. log says whether to log it now; suppressed is how many
// refusals to the same place went unlogged since the last line.
func (r *Refusals) Add(e *RefusedError) (log bool, suppressed int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*refusal{}
	}
	f := r.m[e.Addr]
	if f == nil {
		f = &refusal{}
		r.m[e.Addr] = f
	}
	now := time.Now()
	f.owner, f.last = e.Owner, now
	f.count++
	if now.Sub(f.lastLine) < LogEvery {
		f.quiet++
		return false, 0
	}
	f.lastLine = now
	suppressed, f.quiet = f.quiet, 0
	return true, suppressed
}

// ForeignListener is a loopback port kc-agent refused to send a token to
// in the clear, because another user (not root) listened there. The
// socket API carries it as ipc.ForeignListener (same fields).
type ForeignListener struct {
	Addr  string // host:port
	Owner string // e.g. "uid 65534"
	UID   int
	Count int64 // refusals so far
	Last  time.Time
}

// Snapshot lists the refusals so far, by destination.
func (r *Refusals) Snapshot() []ForeignListener {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) == 0 {
		return nil
	}
	out := make([]ForeignListener, 0, len(r.m))
	for addr, f := range r.m {
		out = append(out, ForeignListener{Addr: addr, Owner: f.owner.String(), UID: f.owner.UID, Count: f.count, Last: f.last.UTC().Round(time.Second)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// Refused returns the *RefusedError in err's chain, or nil.
func Refused(err error) *RefusedError {
	var e *RefusedError
	if errors.As(err, &e) {
		return e
	}
	return nil
}
