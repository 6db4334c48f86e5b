// Package proxy is the localhost proxy that puts the user's access token on
// requests to configured APIs: reverse routes (http://127.0.0.1:PORT/<route>/),
// and a forward proxy for HTTP(S)_PROXY with CONNECT tunnels and opt-in TLS
// interception for hosts a rule names.
package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/tokens"
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
}

type route struct {
	config.Route
	upstream *url.URL
	handler  http.Handler // the reverse route under /<name> on the main port
}

// Proxy is the running proxy: one main listener and optional per-route ones.
type Proxy struct {
	opts      Options
	log       *slog.Logger
	secret    string
	transport *http.Transport
	upstream  *url.URL // chained proxy for blind tunnels, if configured
	routes    map[string]*route
	rules     map[string]*route // exact scheme://host:port -> route, for the forward proxy
	forward   *httputil.ReverseProxy
	// intercepting serves requests inside intercepted tunnels.
	intercepting *httputil.ReverseProxy

	caOnce sync.Once
	ca     *CA
	caErr  error

	mu        sync.Mutex
	servers   []*http.Server
	listeners []net.Listener
	tunnels   sync.WaitGroup
	closing   chan struct{}
	addr      string
}

// New checks the configuration and prepares a proxy; Start listens.
func New(opts Options) (*Proxy, error) {
	p := &Proxy{opts: opts, log: opts.Log, routes: map[string]*route{}, rules: map[string]*route{}, closing: make(chan struct{})}
	cfg := opts.Config
	for _, r := range cfg.Routes {
		u, err := url.Parse(r.Upstream)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", r.Name, err)
		}
		rt := &route{Route: r, upstream: u}
		p.routes[r.Name] = rt
		if r.Intercept || u.Scheme == "http" {
			p.rules[originKey(u.Scheme, u.Host)] = rt
		}
	}
	secret, err := LoadOrCreateSecret(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("proxy secret: %w", err)
	}
	p.secret = secret
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if cfg.Proxy.CAFile != "" {
		pemData, err := os.ReadFile(cfg.Proxy.CAFile)
		if err != nil {
			return nil, fmt.Errorf("proxy.ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("proxy.ca_file %s holds no PEM certificate", cfg.Proxy.CAFile)
		}
	}
	if cfg.Proxy.UpstreamProxy != "" {
		p.upstream, _ = url.Parse(cfg.Proxy.UpstreamProxy)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	p.transport = &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		ForceAttemptHTTP2:   true,
		// Never the environment's proxies: HTTPS_PROXY may well be us.
		Proxy: nil,
	}
	if p.upstream != nil {
		p.transport.Proxy = http.ProxyURL(p.upstream)
	}
	p.forward = p.newReverseProxy(false)
	p.intercepting = p.newReverseProxy(false)
	for _, rt := range p.routes {
		rt.handler = p.reverseHandler(rt, "/"+rt.Name)
	}
	return p, nil
}

// originKey is the exact scheme+host+port a rule names.
func originKey(scheme, hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
		port = "443"
		if scheme == "http" {
			port = "80"
		}
	}
	return strings.ToLower(scheme) + "://" + strings.ToLower(strings.Trim(host, "[]")) + ":" + port
}

// Start opens the main listener and any per-route listeners.
func (p *Proxy) Start() error {
	cfg := p.opts.Config
	if err := p.listen(cfg.ProxyListen(), p); err != nil {
		return err
	}
	for _, r := range p.routes {
		if r.Listen == "" {
			continue
		}
		if err := p.listen(r.Listen, p.reverseHandler(r, "")); err != nil {
			p.Close()
			return fmt.Errorf("route %s: %w", r.Name, err)
		}
	}
	return nil
}

// Status describes the running proxy; withURL adds the proxy URL, which
// carries the per-user secret.
func (p *Proxy) Status(withURL bool) ipc.ProxyStatus {
	addr := p.Addr()
	st := ipc.ProxyStatus{Running: addr != "", Addr: addr, Routes: []ipc.RouteInfo{}}
	if withURL && addr != "" {
		st.URL = (&url.URL{Scheme: "http", User: url.UserPassword(ProxyUser, p.secret), Host: addr}).String()
	}
	for _, r := range p.opts.Config.Routes {
		base := "http://" + addr + "/" + r.Name
		if r.Listen != "" {
			base = "http://" + r.Listen
		}
		st.Routes = append(st.Routes, ipc.RouteInfo{Name: r.Name, URL: base, Upstream: r.Upstream, Profile: r.ProfileName()})
		if r.Intercept {
			st.CABundle = CABundlePath(p.opts.StateDir)
		}
	}
	return st
}

// Addr is the main listener's address.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

func (p *Proxy) listen(addr string, h http.Handler) error {
	if err := config.CheckListen(addr, p.opts.Config.Proxy.UnsafeListenNonLoopback); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("proxy can not listen on %s: %w", addr, err)
	}
	ln = &ipc.SameUserListener{Listener: ln, PeerUID: loopbackPeerUID, Log: p.log,
		Refusal: "proxy refused a connection from another user"}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// No read/write timeouts: proxied streams (downloads, SSE,
		// websockets) may run for hours.
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	p.mu.Lock()
	p.servers = append(p.servers, srv)
	p.listeners = append(p.listeners, ln)
	if p.addr == "" {
		p.addr = ln.Addr().String()
	}
	p.mu.Unlock()
	go srv.Serve(ln)
	p.log.Info("proxy listening", "addr", ln.Addr().String())
	return nil
}

// Close stops the listeners and ends open tunnels.
func (p *Proxy) Close() {
	p.mu.Lock()
	select {
	case <-p.closing:
	default:
		close(p.closing)
	}
	servers := p.servers
	p.servers = nil
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			s.Close()
		}
	}
	p.tunnels.Wait()
	p.transport.CloseIdleConnections()
}

// loopbackPeerUID finds the uid behind an accepted loopback TCP connection.
func loopbackPeerUID(c net.Conn) (int, error) {
	server, ok1 := c.LocalAddr().(*net.TCPAddr)
	client, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return -1, errors.New("not a TCP connection")
	}
	return ipc.TCPConnUID(server, client)
}

// writeError answers with a kc-agent error body.
func writeError(w http.ResponseWriter, status int, code, msg, hint string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Kc-Agent-Error", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(ipc.Error{Code: code, Message: msg, Hint: hint})
}

// ServeHTTP is the main listener: CONNECT and absolute-form requests are
// the forward proxy, everything else a reverse route.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodConnect:
		p.handleConnect(w, r)
	case r.URL.IsAbs():
		p.handleForwardHTTP(w, r)
	default:
		name := routeName(r.URL.Path)
		rt, ok := p.routes[name]
		if !ok {
			writeError(w, http.StatusNotFound, "no_route", fmt.Sprintf("no route %q", name), "routes are configured under `routes:` in the kc-agent config; `kc-agent env` lists them")
			return
		}
		rt.handler.ServeHTTP(w, r)
	}
}

func routeName(p string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return name
}

// isLoopbackHost accepts only literal loopback Host values: a DNS name
// that resolves to 127.0.0.1 (DNS rebinding) is refused.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// browserOriginated tells requests a web page made: a page in the user's
// browser must never spend the user's token.
func browserOriginated(r *http.Request) bool {
	if r.Header.Get("Origin") != "" {
		return true
	}
	switch strings.ToLower(r.Header.Get("Sec-Fetch-Site")) {
	case "cross-site", "same-site":
		return true
	}
	return false
}

type ctxKey struct{}

type outbound struct {
	token    string
	upstream *url.URL
	path     string
	rawPath  string
	prefix   string
	local    string // scheme://host the client used
}

// reverseHandler forwards to the route's upstream with the token. prefix is
// the local path prefix ("/name" on the main port, "" on a route's own).
func (p *Proxy) reverseHandler(rt *route, prefix string) http.Handler {
	rp := p.newReverseProxy(true)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.IsAbs() || r.Method == http.MethodConnect {
			writeError(w, http.StatusBadRequest, "bad_request", "this port serves a reverse route, not a forward proxy", "")
			return
		}
		if !isLoopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("Host %q is not a loopback address", r.Host), "use http://127.0.0.1:PORT/ (names that resolve to loopback are refused: DNS rebinding)")
			return
		}
		if browserOriginated(r) {
			writeError(w, http.StatusForbidden, "forbidden", "requests made by web pages are refused", "call the route from a script or notebook, not from a browser page")
			return
		}
		rest := strings.TrimPrefix(r.URL.Path, prefix)
		rawRest := ""
		if r.URL.RawPath != "" {
			rawRest = strings.TrimPrefix(r.URL.RawPath, prefix)
		}
		if prefix != "" && rest == r.URL.Path {
			rest = "/"
		}
		tok, ok := p.token(w, r, rt)
		if !ok {
			return
		}
		ob := &outbound{token: tok, upstream: rt.upstream, path: rest, rawPath: rawRest, prefix: prefix, local: "http://" + r.Host}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ob)))
	})
}

// token gets the route's token or answers the error itself.
func (p *Proxy) token(w http.ResponseWriter, r *http.Request, rt *route) (string, bool) {
	a, err := p.opts.Tokens.Token(r.Context(), tokens.Request{Profile: rt.ProfileName(), Scopes: rt.Scopes})
	if err != nil {
		var te *tokens.Error
		code, hint := ipc.CodeUnavailable, ""
		if errors.As(err, &te) {
			code, hint = te.Code, te.Hint
		}
		status := http.StatusServiceUnavailable
		if code == ipc.CodeLoginRequired || code == ipc.CodeUnknown {
			status = http.StatusUnauthorized
		}
		writeError(w, status, code, "kc-agent has no valid token for this route: "+err.Error(), hint)
		return "", false
	}
	return a.Token, true
}

func (p *Proxy) newReverseProxy(rewriteLocation bool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			ob := pr.In.Context().Value(ctxKey{}).(*outbound)
			u := *ob.upstream
			pr.Out.URL.Scheme = u.Scheme
			pr.Out.URL.Host = u.Host
			pr.Out.URL.Path = joinPath(u.Path, ob.path)
			pr.Out.URL.RawPath = ""
			if ob.rawPath != "" {
				pr.Out.URL.RawPath = joinPath(u.EscapedPath(), ob.rawPath)
			}
			pr.Out.Host = u.Host
			pr.Out.Header.Del("Proxy-Authorization")
			// With a rule, the agent's token replaces whatever the client
			// sent; without one (forward proxy, no rule) the client's own
			// Authorization goes through untouched.
			if ob.token != "" {
				pr.Out.Header.Set("Authorization", "Bearer "+ob.token)
			}
		},
		Transport: p.transport,
		// 0: Go flushes at once anyway for text/event-stream and for bodies of
		// unknown length (streams); known-length bodies are written in bulk.
		FlushInterval: 0,
		ModifyResponse: func(resp *http.Response) error {
			if !rewriteLocation {
				return nil
			}
			ob := resp.Request.Context().Value(ctxKey{}).(*outbound)
			if loc := resp.Header.Get("Location"); loc != "" {
				resp.Header.Set("Location", rewriteLoc(loc, ob))
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			p.log.Warn("upstream request failed", "host", r.URL.Host, "err", err.Error())
			writeError(w, http.StatusBadGateway, "upstream_error", "the upstream failed: "+err.Error(), "")
		},
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}

func joinPath(base, rest string) string {
	if base == "" || base == "/" {
		return rest
	}
	if rest == "" || rest == "/" {
		if strings.HasSuffix(base, "/") {
			return base
		}
		return base + rest
	}
	return strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(rest, "/")
}

// rewriteLoc maps a Location that points into the upstream back to the
// local route, so clients keep going through the proxy; any other
// Location (another host) is passed on untouched and never followed here.
func rewriteLoc(loc string, ob *outbound) string {
	u, err := url.Parse(loc)
	if err != nil || !u.IsAbs() {
		return loc
	}
	if !strings.EqualFold(u.Scheme, ob.upstream.Scheme) || originKey(u.Scheme, u.Host) != originKey(ob.upstream.Scheme, ob.upstream.Host) {
		return loc
	}
	base := strings.TrimSuffix(ob.upstream.Path, "/")
	if base != "" && u.Path != base && !strings.HasPrefix(u.Path, base+"/") {
		return loc
	}
	rest := strings.TrimPrefix(u.Path, base)
	out := ob.local + ob.prefix + path.Clean("/"+rest)
	if strings.HasSuffix(rest, "/") && !strings.HasSuffix(out, "/") {
		out += "/"
	}
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
}

func (p *Proxy) requireProxyAuth(w http.ResponseWriter, r *http.Request) bool {
	if checkProxyAuth(r.Header.Get("Proxy-Authorization"), p.secret) {
		return true
	}
	w.Header().Set("Proxy-Authenticate", `Basic realm="kc-agent"`)
	writeError(w, http.StatusProxyAuthRequired, "proxy_auth_required", "the kc-agent proxy needs its per-user secret", "use the HTTP(S)_PROXY that `kc-agent env` prints")
	return false
}

// handleForwardHTTP forwards a plain http:// request: with a token only
// when a rule names exactly this origin, else untouched.
func (p *Proxy) handleForwardHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.requireProxyAuth(w, r) {
		return
	}
	if r.URL.Scheme != "http" {
		writeError(w, http.StatusBadRequest, "bad_request", "only http:// URLs can be sent to a proxy in absolute form; https goes through CONNECT", "")
		return
	}
	ob := &outbound{upstream: &url.URL{Scheme: "http", Host: r.URL.Host}, path: r.URL.Path, rawPath: r.URL.RawPath}
	if rt, ok := p.rules[originKey("http", r.URL.Host)]; ok {
		tok, ok := p.token(w, r, rt)
		if !ok {
			return
		}
		ob.token = tok
	}
	p.forward.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ob)))
}

// handleConnect opens a tunnel: blind for hosts without an intercept rule,
// TLS-terminated with a token for hosts with one.
func (p *Proxy) handleConnect(w http.ResponseWriter, r *http.Request) {
	if !p.requireProxyAuth(w, r) {
		return
	}
	host, port, err := parseConnectTarget(r.Host)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error(), "")
		return
	}
	rt := p.rules[originKey("https", net.JoinHostPort(host, port))]
	if rt != nil && !rt.Intercept {
		rt = nil
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "connection can not be hijacked", "")
		return
	}
	var upstream net.Conn
	if rt == nil {
		upstream, err = p.dialTunnel(r.Context(), net.JoinHostPort(host, port))
		if err != nil {
			writeError(w, http.StatusBadGateway, "upstream_error", "can not reach "+net.JoinHostPort(host, port)+": "+err.Error(), "")
			return
		}
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		if upstream != nil {
			upstream.Close()
		}
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n")); err != nil {
		conn.Close()
		return
	}
	p.tunnels.Add(1)
	go func() {
		defer p.tunnels.Done()
		if rt == nil {
			p.blindTunnel(conn, buf.Reader, upstream)
			return
		}
		p.intercept(conn, host, port, rt)
	}()
}

// parseConnectTarget checks a CONNECT authority: host:port, nothing else.
func parseConnectTarget(authority string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(authority)
	if err != nil {
		return "", "", fmt.Errorf("CONNECT needs host:port, got %q", authority)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("CONNECT port %q is not a port", port)
	}
	if host == "" || strings.ContainsAny(host, "/ @?#") {
		return "", "", fmt.Errorf("CONNECT host %q is not a host", host)
	}
	return strings.ToLower(host), strconv.Itoa(n), nil
}

func (p *Proxy) dialTunnel(ctx context.Context, target string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if p.upstream == nil {
		return d.DialContext(ctx, "tcp", target)
	}
	// Chain through the user's own proxy with a CONNECT of our own.
	c, err := d.DialContext(ctx, "tcp", p.upstream.Host)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("upstream proxy answered %s", resp.Status)
	}
	c.SetDeadline(time.Time{})
	// Bytes the upstream sent right after its answer are in br: keep them.
	return &bufferedConn{Conn: c, r: br}, nil
}

func (p *Proxy) blindTunnel(client net.Conn, buffered io.Reader, upstream net.Conn) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(upstream, io.MultiReader(buffered, client))
		if cw, ok := upstream.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		io.Copy(client, upstream)
		if tc, ok := client.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	select {
	case <-done:
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		case <-p.closing:
		}
	case <-p.closing:
	}
	client.Close()
	upstream.Close()
}

// caForIntercept creates the local CA on first use.
func (p *Proxy) caForIntercept() (*CA, error) {
	p.caOnce.Do(func() { p.ca, p.caErr = LoadOrCreateCA(CADir(p.opts.StateDir)) })
	return p.ca, p.caErr
}

// intercept terminates TLS with a leaf from the local CA and serves the
// tunnel's requests with the rule's token, to https://host:port only.
func (p *Proxy) intercept(conn net.Conn, host, port string, rt *route) {
	defer conn.Close()
	ca, err := p.caForIntercept()
	if err != nil {
		p.log.Error("local CA unavailable; refusing an intercepted tunnel", "err", err.Error())
		return
	}
	tconn := tls.Server(conn, &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName != "" && !strings.EqualFold(hello.ServerName, host) {
				p.log.Warn("intercepted tunnel refused: SNI does not match the CONNECT host", "sni", hello.ServerName, "connect", host)
				return nil, fmt.Errorf("SNI %q does not match CONNECT host %q", hello.ServerName, host)
			}
			return ca.Leaf(host)
		},
	})
	tconn.SetDeadline(time.Now().Add(15 * time.Second))
	if err := tconn.Handshake(); err != nil {
		return
	}
	tconn.SetDeadline(time.Time{})
	upstream := &url.URL{Scheme: "https", Host: net.JoinHostPort(host, port)}
	if port == "443" {
		upstream.Host = host
	}
	rp := p.intercepting
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sameAuthority(r.Host, host, port) {
			writeError(w, http.StatusMisdirectedRequest, "forbidden", fmt.Sprintf("Host %q does not match the tunnel's host %s", r.Host, net.JoinHostPort(host, port)), "")
			return
		}
		tok, ok := p.token(w, r, rt)
		if !ok {
			return
		}
		ob := &outbound{token: tok, upstream: upstream, path: r.URL.Path, rawPath: r.URL.RawPath}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ob)))
	})
	ln := newOneConnListener(tconn)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)}
	go func() {
		select {
		case <-p.closing:
			srv.Close()
		case <-ln.done:
		}
	}()
	srv.Serve(ln)
}

func sameAuthority(hostHeader, host, port string) bool {
	h, pt, err := net.SplitHostPort(hostHeader)
	if err != nil {
		h, pt = hostHeader, "443"
	}
	return strings.EqualFold(strings.Trim(h, "[]"), host) && pt == port
}
