package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/kc-agent/kc-agent/ipc"
)

// The browser model. Every reverse route is served from one browser origin
// (http://127.0.0.1:PORT), so a page served through one route could, as far
// as the browser is concerned, read every other route. kc-agent therefore:
//
//   - refuses every request a page makes (fetch, XHR, subresources, forms
//     posted from other sites): anything with Origin, with a Sec-Fetch-Mode
//     other than navigate, with Sec-Fetch-Site cross-site or same-site, or
//     with a Referer outside the route;
//   - refuses top-level navigations too, unless the route sets
//     allow_browser: true, and then only GET/HEAD typed or bookmarked by
//     the user (Sec-Fetch-Site none) or from the same route, into a
//     document (never a frame);
//   - sandboxes what it serves (Content-Security-Policy: sandbox, so a
//     page runs in an opaque origin and its own requests are cross-site;
//     X-Content-Type-Options: nosniff).
//
// Scripts, notebooks, curl and the like send none of these headers and are
// not affected.

// browserCheck returns "" when r may get a token through rt, else why not.
// base is the route's base URL as the client sees it (scheme://host/prefix).
func browserCheck(r *http.Request, rt *route, base *url.URL) string {
	if !ipc.FromBrowser(r.Header) {
		return ""
	}
	site := strings.ToLower(r.Header.Get("Sec-Fetch-Site"))
	mode := strings.ToLower(r.Header.Get("Sec-Fetch-Mode"))
	dest := strings.ToLower(r.Header.Get("Sec-Fetch-Dest"))
	if r.Header.Get("Origin") != "" {
		return "requests made by web pages are refused"
	}
	if site == "cross-site" || site == "same-site" {
		return "requests from other sites are refused"
	}
	if ref := r.Header.Get("Referer"); ref != "" && !withinBase(ref, base) {
		return "requests from pages outside this route are refused"
	}
	if mode != "" && mode != "navigate" {
		return "requests made by web pages are refused"
	}
	if mode == "navigate" || (dest != "" && dest != "empty") {
		if !rt.AllowBrowser {
			return "this route is not opened in a browser (set allow_browser: true on the route to allow it)"
		}
		if dest != "" && dest != "document" {
			return "this route can not be framed or embedded"
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return "a browser may only view this route (GET), not send to it"
		}
	}
	return ""
}

// withinBase tells whether the URL ref is at or under base.
func withinBase(ref string, base *url.URL) bool {
	u, err := url.Parse(ref)
	if err != nil || !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) {
		return false
	}
	prefix := strings.TrimSuffix(base.Path, "/")
	return prefix == "" || u.Path == prefix || strings.HasPrefix(u.Path, prefix+"/")
}

func sandboxHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
}

// writeError answers with a kc-agent error body, the status that goes with
// its code, and the sandbox headers.
func writeError(w http.ResponseWriter, code, msg, hint string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Kc-Agent-Error", code)
	h.Set("Cache-Control", "no-store")
	sandboxHeaders(h)
	w.WriteHeader(ipc.HTTPStatus(code))
	json.NewEncoder(w).Encode(ipc.Error{Code: code, Message: msg, Hint: hint})
}

// Refusal reasons, as counted in status.
const (
	reasonBrowser   = "browser"
	reasonProxyAuth = "proxy_auth"
	reasonOtherUser = "other_user"
	reasonPath      = "unsafe_path"
	reasonHost      = "not_loopback_host"
	reasonLoop      = "proxy_loop"
	// reasonForeignListener: a token for a cleartext loopback upstream
	// was kept back, as another user listened there.
	reasonForeignListener = "foreign_listener"
	// reasonUnverifiedListener: the same, as who listened was unknown.
	reasonUnverifiedListener = "unverified_listener"
)

// refusals counts refused requests by reason and logs them, at most one
// line per reason every refusalLogEvery, so a flood can not fill the disk.
type refusals struct {
	mu      sync.Mutex
	counts  map[string]int64
	lastLog map[string]time.Time
	quiet   map[string]int64 // refusals not logged since the last line
}

const refusalLogEvery = 10 * time.Second

func (f *refusals) count(reason string) (log bool, suppressed int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts == nil {
		f.counts, f.lastLog, f.quiet = map[string]int64{}, map[string]time.Time{}, map[string]int64{}
	}
	f.counts[reason]++
	now := time.Now()
	if now.Sub(f.lastLog[reason]) < refusalLogEvery {
		f.quiet[reason]++
		return false, 0
	}
	f.lastLog[reason] = now
	suppressed = f.quiet[reason]
	f.quiet[reason] = 0
	return true, suppressed
}

func (f *refusals) snapshot() map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.counts) == 0 {
		return nil
	}
	out := make(map[string]int64, len(f.counts))
	for k, v := range f.counts {
		out[k] = v
	}
	return out
}

// refuse counts, logs (rate-limited) and answers a refused request. The
// log names the reason, method, host and path, never a header value.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, reason, code, msg, hint string) {
	if log, suppressed := p.refusals.count(reason); log {
		p.log.Warn("proxy refused a request", "reason", reason, "method", r.Method, "host", r.Host,
			"path", r.URL.Path, "similar_refusals_not_logged", suppressed)
	}
	writeError(w, code, msg, hint)
}
