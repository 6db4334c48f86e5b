package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/kc-agent/kc-agent/agent/cleartext"
	"github.com/kc-agent/kc-agent/agent/config"
)

// table is one configuration, compiled: what the handlers consult. It is
// never changed once live; Reconfigure swaps in a new one.
type table struct {
	cfg      *config.Config
	routes   map[string]*route // by name
	byListen map[string]*route // own-port routes, by listenKey
	// rules maps an exact scheme://host:port to the route whose token the
	// forward proxy may send there: only routes with intercept: true.
	rules     map[string]*route
	transport *http.Transport
	// cleartext carries tokens over plain http: its connections to
	// loopback are checked for who listens before they are used; [1] is
	// for routes with unsafe_cleartext_upstream (see cleartext.Check).
	cleartext [2]*http.Transport
	upstream  *url.URL // chained proxy for blind tunnels, if configured
	rp        *httputil.ReverseProxy
	warnings  []string
}

type route struct {
	config.Route
	upstream *url.URL
}

// compile checks cfg and builds its table. Everything that can fail
// (upstream URLs, the CA file) fails here, before anything is swapped.
func (p *Proxy) compile(cfg *config.Config) (*table, error) {
	t := &table{cfg: cfg, routes: map[string]*route{}, byListen: map[string]*route{}, rules: map[string]*route{}}
	for _, r := range cfg.Routes {
		u, err := url.Parse(r.Upstream)
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", r.Name, err)
		}
		rt := &route{Route: r, upstream: u}
		t.routes[r.Name] = rt
		if r.Listen != "" {
			t.byListen[listenKey(r.Listen, r.Name)] = rt
		}
		if r.Intercept {
			t.rules[config.OriginKey(u)] = rt
			// The CA bundle must exist before a client is pointed at it.
			if _, err := p.caForIntercept(); err != nil {
				return nil, fmt.Errorf("local CA for route %s: %w", r.Name, err)
			}
		}
		switch {
		case u.Scheme == "http" && !config.IsLoopbackHost(u.Host):
			t.warnings = append(t.warnings, fmt.Sprintf("route %s sends your token in the clear to %s (unsafe_cleartext_upstream)", r.Name, u.Host))
		case u.Scheme == "http" && !cfg.OwnersVisible():
			t.warnings = append(t.warnings, fmt.Sprintf("route %s sends your token in the clear to %s, and this system can not tell who listens there (unsafe_cleartext_upstream)", r.Name, u.Host))
		}
	}
	roots, err := upstreamRoots(cfg.Proxy.CAFile)
	if err != nil {
		return nil, err
	}
	if cfg.Proxy.UpstreamProxy != "" {
		t.upstream, _ = url.Parse(cfg.Proxy.UpstreamProxy)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	t.transport = &http.Transport{
		DialContext: dialer.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12,
			ClientSessionCache: tls.NewLRUClientSessionCache(256)},
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		ForceAttemptHTTP2:   true,
		// Never the environment's proxies: HTTPS_PROXY may well be us.
		Proxy: nil,
	}
	if t.upstream != nil {
		// The user's proxy carries requests to https upstreams off this
		// machine, as a CONNECT tunnel with TLS end to end. A plain-http
		// request through it would hand it the token in the clear, and a
		// loopback upstream behind it would be the proxy's own loopback.
		up := t.upstream
		t.transport.Proxy = func(r *http.Request) (*url.URL, error) {
			if r.URL.Scheme != "https" || config.IsLoopbackHost(r.URL.Host) {
				return nil, nil
			}
			return up, nil
		}
	}
	// Never through a proxy: plain http goes to loopback, or (opted in)
	// straight to the upstream. Routes with unsafe_cleartext_upstream get
	// their own pool, whose dials let an owner that can't be named (or
	// root) through, as a profile's unsafe_cleartext_issuer does: a
	// connection checked under the opt-in never serves a route without it.
	for i, allow := range []bool{false, true} {
		t.cleartext[i] = &http.Transport{
			DialContext:         cleartext.Dial(dialer.DialContext, allow),
			IdleConnTimeout:     90 * time.Second,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 64,
		}
	}
	t.rp = p.newReverseProxy(t)
	return t, nil
}

// upstreamRoots are the CAs upstreams are verified against: the system's,
// and proxy.ca_file's when set.
func upstreamRoots(caFile string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if caFile == "" {
		return roots, nil
	}
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("proxy.ca_file: %w", err)
	}
	if !roots.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("proxy.ca_file %s holds no PEM certificate", caFile)
	}
	return roots, nil
}

// RoundTrip sends a request that carries a token over plain http through
// the checked transport, everything else through the usual one. Each has
// its own pool: a connection dialed for a request without a token (the
// forward proxy, no rule) is never reused for one with a token.
func (t *table) RoundTrip(r *http.Request) (*http.Response, error) {
	ob, _ := r.Context().Value(ctxKey{}).(*outbound)
	if r.URL.Scheme != "http" || ob == nil || ob.token == "" {
		return t.transport.RoundTrip(r)
	}
	if ob.unsafeCleartext {
		return t.cleartext[1].RoundTrip(r)
	}
	return t.cleartext[0].RoundTrip(r)
}

func (t *table) closeIdle() {
	t.transport.CloseIdleConnections()
	for _, c := range t.cleartext {
		c.CloseIdleConnections()
	}
}
