// Package proxy is the localhost proxy that puts the user's access token on
// requests to configured APIs. Modes, one file each:
//
//   - reverse.go: reverse routes, http://127.0.0.1:PORT/<route>/... (or a
//     route's own port) to the route's upstream;
//   - forward.go: the forward proxy for HTTP(S)_PROXY: plain http:// in
//     absolute form, and CONNECT, either a blind tunnel or, for hosts a
//     route intercepts, TLS terminated with a leaf from the local CA;
//   - guard.go: who may use the proxy and what may cross it (browser
//     requests, dot segments, loops), and the refusal counters.
//
// The request path: a mode's handler checks the request, asks the token
// source for the route's token, and hands the request to one
// httputil.ReverseProxy together with an *outbound (where it goes and with
// which token) stored in the request context. Rewrite (outbound.go) is the
// only place that builds the upstream request; the context value is how the
// handler's decision reaches it.
//
// A Proxy outlives config reloads: its listeners stay open and
// Reconfigure swaps the routing table underneath them. A change that can
// not be applied (a missing CA file, a port in use) leaves the running
// table and listeners as they were.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kc-agent/kc-agent/agent/cleartext"
	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/ipc"
)

// TokenSource hands out access tokens (the daemon's tokens.Manager).
type TokenSource interface {
	Token(ctx context.Context, req tokens.Request) (tokens.Access, error)
}

// Options configure a proxy.
type Options struct {
	Config   *config.Config
	Tokens   TokenSource
	StateDir string
	Log      *slog.Logger
	// Activity, when set, is called as each request (or CONNECT tunnel)
	// starts, and what it returns when it ends: the agent's idle timer.
	Activity func() (end func())
}

// Proxy is the running proxy: a main listener and optional per-route ones.
type Proxy struct {
	tokens   TokenSource
	stateDir string
	log      *slog.Logger
	secret   string
	table    atomic.Pointer[table]
	refusals refusals
	nonces   nonceBook    // DPoP-Nonce by profile and upstream origin
	replay   replayBudget // request bodies kept for a DPoP nonce retry
	// foreign counts, by destination, the tokens not sent in the clear
	// because another user listened on the upstream's port.
	foreign cleartext.Refusals

	caOnce sync.Once
	ca     *CA
	caErr  error

	// applyMu makes table changes one at a time: a reload, or an attempt
	// of the wait for a taken address (retry.go).
	applyMu   sync.Mutex
	mu        sync.Mutex
	listeners map[string]*listener // by configured address
	mainAddr  string               // the main listener's key (listenKey)
	addr      string               // where the main listener really is
	tunnels   sync.WaitGroup
	closing   chan struct{}
	served    []string    // addresses served on, this run and before (ports.go)
	retry     *retryState // while waiting for a taken address (retry.go)
	activity  func() (end func())
}

type listener struct {
	srv  *http.Server
	ln   net.Listener
	addr string // the real address
	tcp  *net.TCPAddr
}

// New checks the configuration and prepares a proxy; Start listens.
func New(opts Options) (*Proxy, error) {
	p := &Proxy{tokens: opts.Tokens, stateDir: opts.StateDir, log: opts.Log,
		listeners: map[string]*listener{}, closing: make(chan struct{}), activity: opts.Activity}
	secret, err := LoadOrCreateSecret(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("proxy secret: %w", err)
	}
	p.secret = secret
	p.served = loadPorts(opts.StateDir)
	t, err := p.compile(opts.Config)
	if err != nil {
		return nil, err
	}
	p.table.Store(t)
	return p, nil
}

// Start opens the listeners the configuration names.
func (p *Proxy) Start() error {
	return p.apply(p.table.Load())
}

// Reconfigure switches to a new configuration. New listeners are opened
// before anything is swapped; on any error the proxy keeps running as it
// was and the error says why.
func (p *Proxy) Reconfigure(cfg *config.Config) error {
	t, err := p.compile(cfg)
	if err != nil {
		return err
	}
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	old := p.table.Load()
	if err := p.apply(t); err != nil {
		if p.waitFor(t, err) {
			return nil
		}
		return err
	}
	if old != t {
		old.closeIdle()
	}
	return nil
}

// apply opens the listeners t needs that are not open yet, then makes t
// live and closes the listeners it no longer needs.
func (p *Proxy) apply(t *table) error {
	mainKey := listenKey(t.cfg.ProxyListen(), "")
	want := map[string]http.Handler{mainKey: http.HandlerFunc(p.serveMain)}
	for _, r := range t.routes {
		if r.Listen != "" {
			key := listenKey(r.Listen, r.Name)
			want[key] = p.ownPortHandler(key)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closing: // a retry that lost the race with Close
		return errors.New("the proxy is closed")
	default:
	}
	opened := map[string]*listener{}
	for key, h := range want {
		if p.listeners[key] != nil {
			continue
		}
		l, err := p.listen(listenAddr(key), h, t.cfg.Proxy.UnsafeListenNonLoopback)
		if err != nil {
			for _, o := range opened {
				o.srv.Close()
			}
			return err
		}
		opened[key] = l
	}
	for key, l := range opened {
		p.listeners[key] = l
		go l.srv.Serve(l.ln)
		p.log.Info("proxy listening", "addr", l.addr)
	}
	p.table.Store(t)
	p.retry = nil
	for addr, l := range p.listeners {
		if _, ok := want[addr]; !ok {
			delete(p.listeners, addr)
			go shutdown(l.srv)
			p.log.Info("proxy stopped listening", "addr", l.addr)
		}
	}
	p.mainAddr = mainKey
	p.addr = p.listeners[p.mainAddr].addr
	addrs := make([]string, 0, len(p.listeners))
	for _, l := range p.listeners {
		addrs = append(addrs, l.addr)
	}
	slices.Sort(addrs)
	p.servedOn(addrs)
	return nil
}

func (p *Proxy) listen(addr string, h http.Handler, unsafe bool) (*listener, error) {
	if err := config.CheckListen(addr, unsafe); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError(addr, err)
	}
	ln = &ipc.SameUserListener{Listener: ln, Peer: peer.Loopback, Log: p.log,
		Refusal: "proxy refused a connection from another user", OnRefuse: func() { p.refusals.count(reasonOtherUser) }}
	srv := &http.Server{
		Handler:           p.tracked(h),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// No read/write timeouts: proxied streams (downloads, SSE,
		// websockets) may run for hours.
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	tcp, _ := ln.Addr().(*net.TCPAddr)
	return &listener{srv: srv, ln: ln, addr: ln.Addr().String(), tcp: tcp}, nil
}

// listenError says who holds a port that is in use (a *busyError, which
// the proxy waits out: retry.go): another user's process there would
// receive the user's API traffic.
func listenError(addr string, err error) error {
	if !addrInUse(err) {
		return fmt.Errorf("proxy can not listen on %s: %w", addr, err)
	}
	msg := fmt.Sprintf("proxy can not listen on %s: the port is in use", addr)
	ta, rerr := net.ResolveTCPAddr("tcp", addr)
	if rerr == nil {
		if o, oerr := peer.TCPListener(ta); oerr == nil {
			msg = fmt.Sprintf("proxy can not listen on %s: another of your processes holds the port", addr)
			if !o.Self() {
				msg = fmt.Sprintf("proxy can not listen on %s: the port is taken by %s (another user)", addr, o)
			}
		}
	}
	return &busyError{msg: msg, err: err}
}

func shutdown(s *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		s.Close()
	}
}

// Addr is the main listener's address.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// listensOn tells whether host:port is one of the proxy's own listeners.
func (p *Proxy) listensOn(host, port string) bool {
	// Literal addresses and localhost only: no DNS lookup on the request
	// path (a name that resolves back here only loops the caller's own
	// request, which the listeners' limits bound).
	var ips []net.IP
	if strings.EqualFold(host, "localhost") {
		ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	} else if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		if ip.IsUnspecified() { // 0.0.0.0 and :: reach this host
			ip = net.IPv4(127, 0, 0, 1)
		}
		ips = []net.IP{ip}
	} else {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.listeners {
		ta := l.tcp
		if ta == nil || strconv.Itoa(ta.Port) != port {
			continue
		}
		for _, ip := range ips {
			if ip.Equal(ta.IP) || ta.IP.IsUnspecified() || (ip.IsLoopback() && ta.IP.IsLoopback()) {
				return true
			}
		}
	}
	return false
}

// Status describes the running proxy; withURL adds the proxy URL, which
// carries the per-user secret.
func (p *Proxy) Status(withURL bool) ipc.ProxyStatus {
	t := p.table.Load()
	p.mu.Lock()
	addr := p.addr
	own := map[string]string{}
	for a, l := range p.listeners {
		own[a] = l.addr
	}
	portWarning, portHint := p.portWarning(t.cfg)
	p.mu.Unlock()
	st := ipc.ProxyStatus{Configured: true, Running: addr != "", Addr: addr, Routes: []ipc.RouteInfo{},
		Refused: p.refusals.snapshot(), Warnings: t.warnings, ForeignListeners: WireListeners(p.foreign.Snapshot())}
	for _, w := range t.warnings {
		st.WarningHints = append(st.WarningHints, warningHint(w))
	}
	if portWarning != "" {
		st.Warnings = append(slices.Clip(t.warnings), portWarning)
		st.WarningHints = append(st.WarningHints, portHint)
	}
	p.retryStatus(&st, t.cfg)
	if withURL && addr != "" {
		st.URL = (&url.URL{Scheme: "http", User: url.UserPassword(ProxyUser, p.secret), Host: addr}).String()
	}
	for _, r := range t.cfg.Routes {
		base := "http://" + addr + "/" + r.Name
		if r.Listen != "" {
			base = "http://" + own[listenKey(r.Listen, r.Name)]
		}
		if addr == "" {
			base = "" // waiting for a taken address: no URL anyone may use yet (retry.go)
		}
		st.Routes = append(st.Routes, ipc.RouteInfo{Name: r.Name, URL: base, Upstream: r.Upstream, Profile: r.ProfileName()})
		if r.Intercept {
			st.CABundle = CABundlePath(p.stateDir)
		}
	}
	return st
}

// Close stops the listeners and ends open tunnels.
func (p *Proxy) Close() {
	p.mu.Lock()
	select {
	case <-p.closing:
	default:
		close(p.closing)
	}
	ls := p.listeners
	p.listeners = map[string]*listener{}
	p.addr = ""
	p.mu.Unlock()
	for _, l := range ls {
		shutdown(l.srv)
	}
	p.tunnels.Wait()
	p.table.Load().closeIdle()
}

// serveMain is the main listener: CONNECT and absolute-form requests are
// the forward proxy, everything else a reverse route.
func (p *Proxy) serveMain(w http.ResponseWriter, r *http.Request) {
	t := p.table.Load()
	switch {
	case r.Method == http.MethodConnect:
		p.handleConnect(w, r, t)
	case r.URL.IsAbs():
		p.handleForwardHTTP(w, r, t)
	default:
		name := routeName(r.URL.Path)
		rt, ok := t.routes[name]
		if !ok {
			writeError(w, ipc.CodeNoRoute, fmt.Sprintf("no route %q", name), "routes are configured under `routes:` in the kc-agent config; `kc-agent env` lists them")
			return
		}
		p.serveReverse(w, r, t, rt, "/"+rt.Name)
	}
}

// listenKey names a listener: its configured address, which a reload that
// keeps it keeps the listener open; a port picked at start (port 0) also
// names its owner (the route, or "" for the main listener), so that two
// of them are two listeners, not one.
func listenKey(addr, route string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		return addr + " " + route
	}
	return addr
}

// listenAddr is the configured address in a listenKey.
func listenAddr(key string) string {
	addr, _, _ := strings.Cut(key, " ")
	return addr
}

// ownPortHandler serves the route that listens on key (listenKey),
// whichever route that is in the live table.
func (p *Proxy) ownPortHandler(key string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := p.table.Load()
		rt := t.byListen[key]
		if rt == nil {
			writeError(w, ipc.CodeNoRoute, "no route listens here any more", "see `kc-agent env` for the current routes")
			return
		}
		p.serveReverse(w, r, t, rt, "")
	})
}

// token gets the route's token, with what the outbound request needs to
// know of it (a bound token goes with a proof), or answers the error
// itself.
func (p *Proxy) token(w http.ResponseWriter, r *http.Request, rt *route, ob *outbound) bool {
	a, err := p.tokens.Token(r.Context(), tokens.Request{Profile: rt.ProfileName(), Scopes: rt.Scopes})
	if err != nil {
		code, hint := ipc.CodeUnavailable, ""
		var te *tokens.Error
		if errors.As(err, &te) {
			code, hint = string(te.Code), te.Hint
		}
		msg, hint := tokenFailureWords(r, code, "kc-agent has no valid token for this route: "+err.Error(), hint)
		writeError(w, code, msg, hint)
		return false
	}
	ob.token, ob.dpop, ob.profile = a.Token, a.Bound(), rt.ProfileName()
	return true
}

// WireListeners puts cleartext's refusal records on the wire (the agent's
// status answer, for the proxy and for each profile).
func WireListeners(in []cleartext.ForeignListener) []ipc.ForeignListener {
	out := make([]ipc.ForeignListener, 0, len(in))
	for _, f := range in {
		out = append(out, ipc.ForeignListener(f))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
