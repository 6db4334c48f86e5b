package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strings"

	"github.com/kc-agent/kc-agent/agent/cleartext"
	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/ipc"
)

// outbound is a handler's decision about one request: where it goes and
// with which token. It reaches Rewrite through the request context.
type outbound struct {
	token string // "" only for forward requests no rule names
	// dpop: the token is DPoP-bound; it goes with a proof signed for the
	// upstream request with profile's key (dpop.go).
	dpop     bool
	profile  string
	upstream *url.URL
	path     string
	rawPath  string
	// For reverse routes: the local prefix ("/name" on the main port, ""
	// on a route's own) and the scheme://host the client used, to map
	// upstream redirects back onto the route.
	prefix string
	local  string
	// sandbox: add the browser-hardening headers to the response.
	sandbox bool
	// unsafeCleartext: the route opted in to plain http where who listens
	// can not be checked (unsafe_cleartext_upstream).
	unsafeCleartext bool
}

type ctxKey struct{}

// forward sends r on as ob says.
func (t *table) forward(w http.ResponseWriter, r *http.Request, ob *outbound) {
	t.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ob)))
}

func (p *Proxy) newReverseProxy(tr http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			ob := pr.In.Context().Value(ctxKey{}).(*outbound)
			u := ob.upstream
			pr.Out.URL.Scheme = u.Scheme
			pr.Out.URL.Host = u.Host
			pr.Out.URL.Path = joinPath(u.Path, ob.path)
			pr.Out.URL.RawPath = ""
			if ob.rawPath != "" {
				pr.Out.URL.RawPath = joinPath(u.EscapedPath(), ob.rawPath)
			}
			pr.Out.Host = hostHeader(u)
			pr.Out.Header.Del("Proxy-Authorization")
			if ob.local != "" {
				// A reverse route: only the route's own cookies go on
				// (cookie.go); the browser's others for this host stay.
				ownCookies(pr.Out.Header, ob)
			}
			// With a rule, the agent's token replaces whatever the client
			// sent; without one (forward proxy, no rule) the client's own
			// Authorization goes through untouched.
			switch {
			case ob.token != "" && ob.dpop:
				pr.Out.Header.Set("Authorization", "DPoP "+ob.token)
				pr.Out.Header.Del("DPoP") // the proof is signed in the transport
			case ob.token != "":
				pr.Out.Header.Set("Authorization", "Bearer "+ob.token)
			}
		},
		Transport: &proofTransport{p: p, base: tr},
		// 0: Go flushes at once anyway for text/event-stream and for bodies of
		// unknown length (streams); known-length bodies are written in bulk.
		FlushInterval: 0,
		BufferPool:    bufferPool{},
		ModifyResponse: func(resp *http.Response) error {
			ob := resp.Request.Context().Value(ctxKey{}).(*outbound)
			if ob.sandbox {
				sandboxHeaders(resp.Header)
			}
			if ob.local != "" {
				if loc := resp.Header.Get("Location"); loc != "" {
					resp.Header.Set("Location", rewriteLoc(loc, ob))
				}
				scopeCookies(resp.Header, ob)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if p.refusedUpstream(w, err) || proofFailed(w, err) {
				return
			}
			p.log.Warn("upstream request failed", "host", r.URL.Host, "err", err.Error())
			writeError(w, ipc.CodeUpstream, "the upstream failed: "+err.Error(), "")
		},
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}

// refusedUpstream answers a request whose token was not sent because the
// upstream's loopback port is another user's (or its owner is unknown).
// Nothing reached that port; the refusal is counted and logged once per
// destination every 10 s.
func (p *Proxy) refusedUpstream(w http.ResponseWriter, err error) bool {
	var unverified *cleartext.UnverifiedError
	if r := cleartext.Refused(err); r != nil {
		p.refusals.count(reasonForeignListener)
		if log, suppressed := p.foreign.Add(r); log {
			p.log.Warn("proxy refused to send a token in the clear to a port another user listens on",
				"addr", r.Addr, "owner", r.Owner.String(), "similar_refusals_not_logged", suppressed)
		}
		writeError(w, ipc.CodeUpstream, "the token was not sent: "+r.Error(),
			"start your own server on that port (or find out who holds it: ss -ltnp)")
		return true
	}
	if errors.As(err, &unverified) {
		if log, suppressed := p.refusals.count(reasonUnverifiedListener); log {
			p.log.Warn("proxy could not tell who listens on an upstream port; no token sent", "addr", unverified.Addr,
				"err", unverified.Err.Error(), "similar_refusals_not_logged", suppressed)
		}
		writeError(w, ipc.CodeUpstream, "the token was not sent: "+unverified.Error(), "")
		return true
	}
	return false
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

// originKey is the exact scheme+host+port a rule names.
func originKey(scheme, hostport string) string {
	return config.OriginKey(&url.URL{Scheme: scheme, Host: hostport})
}

// hostHeader is u's host as clients write it in the Host header: without
// the scheme's default port (or an empty one). An upstream configured as
// https://api:443 is then named as curl and browsers name it, and an API
// that rebuilds its URL from Host to check a DPoP proof's htu (which drops
// the default port, RFC 3986 6.2.3) finds the same URL.
func hostHeader(u *url.URL) string {
	switch port := u.Port(); {
	case port == "" && strings.HasSuffix(u.Host, ":"),
		port == "443" && u.Scheme == "https",
		port == "80" && u.Scheme == "http":
		return strings.TrimSuffix(u.Host, ":"+port)
	}
	return u.Host
}
