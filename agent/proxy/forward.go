package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/internal/routepath"
	"github.com/kc-agent/kc-agent/ipc"
)

// The forward proxy (HTTP(S)_PROXY): every request must carry the per-user
// secret. A token is added only where a route with intercept: true names
// the exact scheme://host:port; everything else passes through untouched
// (plain http) or through a blind tunnel (CONNECT).

func (p *Proxy) requireProxyAuth(w http.ResponseWriter, r *http.Request) bool {
	if checkProxyAuth(r.Header.Get("Proxy-Authorization"), p.secret) {
		return true
	}
	w.Header().Set("Proxy-Authenticate", `Basic realm="kc-agent"`)
	p.refuse(w, r, reasonProxyAuth, ipc.CodeProxyAuth, "the kc-agent proxy needs its per-user secret", "use the HTTP(S)_PROXY that `kc-agent env` prints")
	return false
}

// refuseLoop refuses a request aimed back at the proxy itself.
func (p *Proxy) refuseLoop(w http.ResponseWriter, r *http.Request, host, port string) bool {
	if !p.listensOn(host, port) {
		return false
	}
	p.refuse(w, r, reasonLoop, ipc.CodeProxyLoop, "the proxy does not forward requests to itself", "")
	return true
}

// handleForwardHTTP forwards a plain http:// request: with a token only
// when an intercept rule names exactly this origin, else untouched.
func (p *Proxy) handleForwardHTTP(w http.ResponseWriter, r *http.Request, t *table) {
	if !p.requireProxyAuth(w, r) {
		return
	}
	if r.URL.Scheme != "http" {
		writeError(w, ipc.CodeBadRequest, "only http:// URLs can be sent to a proxy in absolute form; https goes through CONNECT", "")
		return
	}
	host, port := r.URL.Hostname(), r.URL.Port()
	if port == "" {
		port = "80"
	}
	if p.refuseLoop(w, r, host, port) {
		return
	}
	ob := &outbound{upstream: &url.URL{Scheme: "http", Host: r.URL.Host}, path: r.URL.Path, rawPath: r.URL.RawPath}
	// A token only inside the rule's base path; elsewhere on the origin the
	// request passes untouched, as for a host without a rule.
	if rt, ok := t.rules[originKey("http", r.URL.Host)]; ok && (routepath.Under(r.URL.Path, rt.upstream.Path) || routepath.Unsafe(r.URL.Path)) {
		if !p.tokenAllowed(w, r, rt, &url.URL{Scheme: "http", Host: r.URL.Host, Path: rt.upstream.Path}) {
			return
		}
		if !p.token(w, r, rt, ob) {
			return
		}
		ob.sandbox, ob.unsafeCleartext = true, rt.UnsafeCleartextUpstream
	}
	t.forward(w, r, ob)
}

// tokenAllowed applies the reverse routes' checks to a forward request
// that is about to get a token.
func (p *Proxy) tokenAllowed(w http.ResponseWriter, r *http.Request, rt *route, base *url.URL) bool {
	if routepath.Unsafe(r.URL.Path) {
		p.refuse(w, r, reasonPath, ipc.CodeUnsafePath, "the path has . or .. segments (or a backslash)", "send the path without dot segments")
		return false
	}
	if why := browserCheck(r, rt, base); why != "" {
		p.refuse(w, r, reasonBrowser, ipc.CodeBrowser, why, "the proxy adds tokens for scripts and notebooks, not for browser pages")
		return false
	}
	return true
}

// handleConnect opens a tunnel: blind for hosts without an intercept rule,
// TLS-terminated with a token for hosts with one.
func (p *Proxy) handleConnect(w http.ResponseWriter, r *http.Request, t *table) {
	if !p.requireProxyAuth(w, r) {
		return
	}
	host, port, err := parseConnectTarget(r.Host)
	if err != nil {
		writeError(w, ipc.CodeBadRequest, err.Error(), "")
		return
	}
	if p.refuseLoop(w, r, host, port) {
		return
	}
	rt := t.rules[originKey("https", net.JoinHostPort(host, port))]
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, ipc.CodeInternal, "connection can not be hijacked", "")
		return
	}
	var upstream net.Conn
	if rt == nil {
		upstream, err = t.dialTunnel(r.Context(), net.JoinHostPort(host, port))
		if err != nil {
			writeError(w, ipc.CodeUpstream, "can not reach "+net.JoinHostPort(host, port)+": "+err.Error(), "")
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
	end := p.busy()
	go func() {
		defer p.tunnels.Done()
		defer end()
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
	if host == "" || strings.ContainsAny(host, "/ @?#\\") {
		return "", "", fmt.Errorf("CONNECT host %q is not a host", host)
	}
	return strings.ToLower(host), strconv.Itoa(n), nil
}

func (t *table) dialTunnel(ctx context.Context, target string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if t.upstream == nil {
		return d.DialContext(ctx, "tcp", target)
	}
	// Chain through the user's own proxy with a CONNECT of our own.
	c, err := d.DialContext(ctx, "tcp", t.upstream.Host)
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
	p.caOnce.Do(func() { p.ca, p.caErr = LoadOrCreateCA(CADir(p.stateDir)) })
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
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !sameAuthority(r.Host, host, port) {
			writeError(w, ipc.CodeMisdirected, fmt.Sprintf("Host %q does not match the tunnel's host %s", r.Host, net.JoinHostPort(host, port)), "")
			return
		}
		// The rule as it is now: a reload may have dropped it.
		t := p.table.Load()
		cur := t.rules[originKey("https", net.JoinHostPort(host, port))]
		if cur == nil || cur.Name != rt.Name {
			writeError(w, ipc.CodeNoRoute, "no route intercepts "+net.JoinHostPort(host, port)+" any more", "reconnect through the proxy")
			return
		}
		if !p.tokenAllowed(w, r, cur, &url.URL{Scheme: "https", Host: upstream.Host, Path: cur.upstream.Path}) {
			return
		}
		ob := &outbound{upstream: upstream, path: r.URL.Path, rawPath: r.URL.RawPath}
		// A token only inside the route's base path.
		if routepath.Under(r.URL.Path, cur.upstream.Path) {
			if !p.token(w, r, cur, ob) {
				return
			}
			ob.sandbox = true
		}
		t.forward(w, r, ob)
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
