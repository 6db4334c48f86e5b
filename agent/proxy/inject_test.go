package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/internal/testenv"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/internal/routepath"
)

// fakeTokens hands out "tok-<profile>" without any provider.
type fakeTokens struct{}

func (fakeTokens) Token(_ context.Context, req tokens.Request) (tokens.Access, error) {
	return tokens.Access{Token: "tok-" + req.Profile, Type: "Bearer"}, nil
}

// upstreamRecorder is a plain-http upstream that records what it saw.
type upstreamRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []http.Request
}

func newUpstream(t *testing.T) *upstreamRecorder {
	u := &upstreamRecorder{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, *r.Clone(context.Background()))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<p>%s</p>", r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstreamRecorder) requests() []http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Request(nil), u.seen...)
}

type fixture struct {
	p      *Proxy
	main   string // the main listener's address
	secret string
}

func startProxy(t *testing.T, yaml string) *fixture {
	t.Helper()
	return startProxyWhere(t, yaml, peer.Visible)
}

// startProxyWhere is startProxy with the config checked as on a system
// that shows who owns a TCP socket (ownersVisible) or not.
func startProxyWhere(t *testing.T, yaml string, ownersVisible bool) *fixture {
	t.Helper()
	return startProxyTokens(t, yaml, ownersVisible, fakeTokens{})
}

func (f *fixture) do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultTransport.(*http.Transport).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (f *fixture) get(t *testing.T, path string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+f.main+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return f.do(t, req)
}

// forwardGet sends an absolute-form request through the forward proxy.
func (f *fixture) forwardGet(t *testing.T, target string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", f.main)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	auth := base64.StdEncoding.EncodeToString([]byte(ProxyUser + ":" + f.secret))
	u, _ := url.Parse(target)
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\nConnection: close\r\n\r\n", target, u.Host, auth)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestReverseRouteInjectsAndSandboxes(t *testing.T) {
	up := newUpstream(t)
	f := startProxy(t, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s/v1\n", up.URL))
	resp := f.get(t, "/api/tables", "Authorization", "Bearer client-own")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	seen := up.requests()
	if len(seen) != 1 || seen[0].URL.Path != "/v1/tables" || seen[0].Header.Get("Authorization") != "Bearer tok-default" {
		t.Fatalf("upstream saw %+v", seen)
	}
	if resp.Header.Get("Content-Security-Policy") != "sandbox" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("route responses are not sandboxed: %v", resp.Header)
	}
}

// A plain-http upstream named by a route without intercept: true never
// gets a token through the forward proxy.
func TestForwardPlainHTTPNeedsIntercept(t *testing.T) {
	up := newUpstream(t)
	f := startProxy(t, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s/api\n", up.URL))
	if resp := f.forwardGet(t, up.URL+"/x"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if seen := up.requests(); len(seen) != 1 || seen[0].Header.Get("Authorization") != "" {
		t.Fatalf("a token went out without an intercept rule: %+v", seen)
	}
	// With intercept: true, it does.
	f2 := startProxy(t, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s/api\n    intercept: true\n", up.URL))
	f2.forwardGet(t, up.URL+"/api/y")
	if seen := up.requests(); len(seen) != 2 || seen[1].Header.Get("Authorization") != "Bearer tok-default" {
		t.Fatalf("intercept rule ignored: %+v", seen)
	}
}

func TestDotSegmentsRefused(t *testing.T) {
	up := newUpstream(t)
	f := startProxy(t, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s/api\n", up.URL))
	for _, raw := range []string{"/api/../x", "/api/%2e%2e/x", "/api/%2E%2e/x", "/api/..%2fx", "/api/./x", "/api/a/..", "/api/..%5cx", "/api/a\\..\\x",
		"/api/..;/x", "/api/%2e%2e;/x", "/api/..%00/x", "/api/%252e%252e/x", "/api/a%252fb", "/api/x%0a"} {
		c, err := net.Dial("tcp", f.main)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", raw, f.main)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", raw, resp.StatusCode)
		}
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("%d dot-segment requests reached the upstream", n)
	}
	if f.p.Status(false).Refused[reasonPath] == 0 {
		t.Fatal("refusals not counted")
	}
}

func TestBrowserModel(t *testing.T) {
	up := newUpstream(t)
	f := startProxy(t, fmt.Sprintf("routes:\n  - name: a\n    upstream: %s/a\n    allow_browser: true\n  - name: b\n    upstream: %s/b\n    profile: other\n", up.URL, up.URL))
	base := "http://" + f.main
	cases := []struct {
		name string
		path string
		hdr  []string
		want int
	}{
		{"script", "/b/x", nil, 200},
		{"navigation to a route without allow_browser", "/b/x", []string{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Sec-Fetch-Site", "none"}, 403},
		{"typed navigation to an allowed route", "/a/x", []string{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Sec-Fetch-Site", "none"}, 200},
		{"allowed route in a frame", "/a/x", []string{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "iframe", "Sec-Fetch-Site", "none"}, 403},
		{"cross-site navigation", "/a/x", []string{"Sec-Fetch-Mode", "navigate", "Sec-Fetch-Dest", "document", "Sec-Fetch-Site", "cross-site"}, 403},
		{"same-origin fetch from route a to route b", "/b/x", []string{"Sec-Fetch-Mode", "cors", "Sec-Fetch-Dest", "empty", "Sec-Fetch-Site", "same-origin", "Referer", base + "/a/page"}, 403},
		{"fetch from a sandboxed page", "/b/x", []string{"Origin", "null", "Sec-Fetch-Mode", "cors", "Sec-Fetch-Site", "cross-site"}, 403},
		{"same-route subresource", "/a/img", []string{"Sec-Fetch-Mode", "no-cors", "Sec-Fetch-Dest", "image", "Sec-Fetch-Site", "same-origin", "Referer", base + "/a/page"}, 403},
		{"foreign Referer, old browser", "/b/x", []string{"Referer", base + "/a/page"}, 403},
		{"Referer inside the route", "/b/x", []string{"Referer", base + "/b/page"}, 200},
	}
	for _, c := range cases {
		before := len(up.requests())
		resp := f.get(t, c.path, c.hdr...)
		if resp.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, resp.StatusCode, c.want)
		}
		if got := len(up.requests()) - before; (c.want == 200) != (got == 1) {
			t.Errorf("%s: %d requests reached the upstream", c.name, got)
		}
	}
	if f.p.Status(false).Refused[reasonBrowser] < 7 {
		t.Fatalf("browser refusals not counted: %v", f.p.Status(false).Refused)
	}
}

func TestConnectToItselfRefused(t *testing.T) {
	f := startProxy(t, "proxy:\n  listen: 127.0.0.1:0\n")
	c, err := net.Dial("tcp", f.main)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	auth := base64.StdEncoding.EncodeToString([]byte(ProxyUser + ":" + f.secret))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", f.main, f.main, auth)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("CONNECT to the proxy itself: %v %v", resp, err)
	}
	_, port, _ := net.SplitHostPort(f.main)
	if resp := f.forwardGet(t, "http://localhost:"+port+"/x"); resp.StatusCode != 403 {
		t.Fatalf("forward request to the proxy itself: %d", resp.StatusCode)
	}
	if f.p.Status(false).Refused[reasonLoop] != 2 {
		t.Fatalf("loops not counted: %v", f.p.Status(false).Refused)
	}
}

func TestBadProxySecretCountedAndRateLimited(t *testing.T) {
	f := startProxy(t, "proxy:\n  listen: 127.0.0.1:0\n")
	for i := 0; i < 50; i++ {
		req, _ := http.NewRequest("GET", "http://example.com/", nil)
		c, _ := net.Dial("tcp", f.main)
		fmt.Fprintf(c, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nProxy-Authorization: Basic %s\r\nConnection: close\r\n\r\n", base64.StdEncoding.EncodeToString([]byte("kc:wrong")))
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		c.Close()
		if err != nil || resp.StatusCode != 407 {
			t.Fatalf("bad secret: %v %v", resp, err)
		}
	}
	if n := f.p.Status(false).Refused[reasonProxyAuth]; n != 50 {
		t.Fatalf("counted %d of 50", n)
	}
	logged := 0
	var r refusals
	for i := 0; i < 1000; i++ {
		if log, _ := r.count("x"); log {
			logged++
		}
	}
	if logged != 1 {
		t.Fatalf("a flood of 1000 refusals logged %d lines", logged)
	}
}

// A reload that can not be applied (a port in use, a missing CA file)
// leaves the running proxy serving the old routes.
func TestReconfigureKeepsOldOnFailure(t *testing.T) {
	up := newUpstream(t)
	f := startProxy(t, fmt.Sprintf("proxy:\n  listen: 127.0.0.1:0\nroutes:\n  - name: api\n    upstream: %s\n", up.URL))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	parse := func(y string) *config.Config {
		cfg, err := config.Parse("c.yaml", []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\n"+y))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	bad := parse(fmt.Sprintf("proxy:\n  listen: 127.0.0.1:0\nroutes:\n  - name: api2\n    upstream: %s\n    listen: %s\n", up.URL, busy.Addr()))
	// Wine 8 shows no socket owners: the hint can only say the port is busy.
	if err := f.p.Reconfigure(bad); err == nil || !(strings.Contains(err.Error(), "holds the port") ||
		testenv.UnderWine() && strings.Contains(err.Error(), "the port is in use")) {
		t.Fatalf("a route on a busy port was applied: %v", err)
	}
	if resp := f.get(t, "/api/still"); resp.StatusCode != 200 {
		t.Fatalf("the old route stopped working: %d", resp.StatusCode)
	}
	pem := filepath.Join(testenv.TempDir(t), "ca.pem")
	os.WriteFile(pem, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"), 0o600)
	cfg := parse(fmt.Sprintf("proxy:\n  listen: 127.0.0.1:0\n  ca_file: %s\nroutes:\n  - name: api\n    upstream: %s\n", pem, up.URL))
	if err := f.p.Reconfigure(cfg); err == nil {
		t.Fatal("a CA file without a certificate was applied")
	}
	if resp := f.get(t, "/api/still"); resp.StatusCode != 200 {
		t.Fatalf("the old route stopped working: %d", resp.StatusCode)
	}
	// A good change swaps routes without closing the main listener.
	good := parse(fmt.Sprintf("proxy:\n  listen: 127.0.0.1:0\nroutes:\n  - name: renamed\n    upstream: %s\n", up.URL))
	if err := f.p.Reconfigure(good); err != nil {
		t.Fatal(err)
	}
	if f.p.Addr() != f.main {
		t.Fatalf("the main listener moved from %s to %s", f.main, f.p.Addr())
	}
	if f.get(t, "/renamed/x").StatusCode != 200 || f.get(t, "/api/x").StatusCode != 404 {
		t.Fatal("the new routing table is not live")
	}
}

// FuzzRoutePath: whatever path a client sends, the upstream request stays
// under the route's base path, or the proxy refuses it.
func FuzzRoutePath(f *testing.F) {
	for _, s := range []string{"/api/x", "/api/../x", "/api/%2e%2e/x", "/api/..%2f..%2fx", "/api", "/api/", "/api/a/./b", "/api//x", "/api/x?y=/../"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.ParseRequestURI(raw)
		if err != nil || routeName(u.Path) != "api" {
			return
		}
		if routepath.Unsafe(u.Path) {
			return // refused with 400
		}
		rest := strings.TrimPrefix(u.Path, "/api")
		out := joinPath("/base", rest)
		if out != "/base" && !strings.HasPrefix(out, "/base/") {
			t.Fatalf("%q maps to %q, outside /base", raw, out)
		}
		for _, seg := range strings.Split(out, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("%q maps to %q with a dot segment", raw, out)
			}
		}
	})
}

// A cleartext upstream off loopback needs the explicit opt-out, and then
// status warns about it.
func TestCleartextUpstreamWarns(t *testing.T) {
	f := startProxy(t, "routes:\n  - name: legacy\n    upstream: http://203.0.113.10/api\n    unsafe_cleartext_upstream: true\n")
	w := f.p.Status(false).Warnings
	if len(w) != 1 || !strings.Contains(w[0], "in the clear") || !strings.Contains(w[0], "203.0.113.10") {
		t.Fatalf("warnings: %v", w)
	}
	f2 := startProxy(t, "routes:\n  - name: local\n    upstream: http://127.0.0.1:9/api\n")
	if w := f2.p.Status(false).Warnings; len(w) != 0 {
		t.Fatalf("a loopback upstream warned: %v", w)
	}
}

// Where socket owners are invisible (macOS), a loopback http upstream
// needs unsafe_cleartext_upstream; with it, status warns and the token goes
// through unchecked (nothing could be checked). Where owners are visible,
// the same route is checked and, served by this user, works without the
// opt-in or a warning.
func TestCleartextLoopbackWhereOwnersAreInvisible(t *testing.T) {
	up := newUpstream(t)
	route := fmt.Sprintf("routes:\n  - name: dev\n    upstream: %s\n", up.URL)
	f := startProxy(t, route)
	if resp := f.get(t, "/dev/x"); resp.StatusCode != 200 || len(f.p.Status(false).Warnings) != 0 {
		t.Fatalf("own loopback upstream: %d, warnings %v", resp.StatusCode, f.p.Status(false).Warnings)
	}
	if _, err := config.ParseWhere("c.yaml", []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\n"+route), false); err == nil {
		t.Fatal("a loopback http route without the opt-in was accepted where owners are invisible")
	}
	f2 := startProxyWhere(t, route+"    unsafe_cleartext_upstream: true\n", false)
	w := f2.p.Status(false).Warnings
	if len(w) != 1 || !strings.Contains(w[0], "can not tell who listens") {
		t.Fatalf("warnings: %v", w)
	}
	if resp := f2.get(t, "/dev/y"); resp.StatusCode != 200 {
		t.Fatalf("opted-in route: %d", resp.StatusCode)
	}
	if seen := up.requests(); len(seen) != 2 || seen[1].Header.Get("Authorization") == "" {
		t.Fatalf("upstream saw %d requests", len(seen))
	}
}

// An intercept rule's token stays inside its base path: elsewhere on the
// same origin the request goes through without one.
func TestForwardTokenOnlyUnderBasePath(t *testing.T) {
	up := newUpstream(t)
	f := startProxy(t, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s/only/here\n    intercept: true\n", up.URL))
	f.forwardGet(t, up.URL+"/only/here/x")
	f.forwardGet(t, up.URL+"/totally/elsewhere")
	f.forwardGet(t, up.URL+"/only/hereafter")
	seen := up.requests()
	if len(seen) != 3 || seen[0].Header.Get("Authorization") == "" {
		t.Fatalf("inside the base path: %+v", seen)
	}
	for _, r := range seen[1:] {
		if r.Header.Get("Authorization") != "" {
			t.Fatalf("a token went to %s, outside the route's base path", r.URL.Path)
		}
	}
}

// With proxy.upstream_proxy set, plain-http and loopback upstreams are
// never sent through it: it would see the token in the clear.
func TestUpstreamProxyNeverCarriesCleartext(t *testing.T) {
	spy := newUpstream(t) // stands for the corporate proxy
	up := newUpstream(t)
	f := startProxy(t, fmt.Sprintf("proxy:\n  listen: 127.0.0.1:0\n  upstream_proxy: %s\nroutes:\n  - name: api\n    upstream: %s/base\n", spy.URL, up.URL))
	if resp := f.get(t, "/api/x"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := len(spy.requests()); n != 0 {
		t.Fatalf("%d requests with the token went through the upstream proxy", n)
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("the upstream saw %d requests", n)
	}
}

func TestConnectToUnspecifiedAddressRefused(t *testing.T) {
	f := startProxy(t, "proxy:\n  listen: 127.0.0.1:0\n")
	_, port, _ := net.SplitHostPort(f.main)
	c, err := net.Dial("tcp", f.main)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	auth := base64.StdEncoding.EncodeToString([]byte(ProxyUser + ":" + f.secret))
	fmt.Fprintf(c, "CONNECT 0.0.0.0:%s HTTP/1.1\r\nHost: 0.0.0.0:%s\r\nProxy-Authorization: Basic %s\r\n\r\n", port, port, auth)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("CONNECT 0.0.0.0 back to the proxy: %v %v", resp, err)
	}
}

// proxy.listen and a route's listen both at port 0 are two listeners with
// two ports: the main one still serves every route and the forward proxy,
// the route's own serves that route.
func TestTwoListenersOnPortZero(t *testing.T) {
	up := newUpstream(t)
	f := startProxy(t, "routes:\n  - name: a\n    upstream: "+up.URL+"\n  - name: b\n    upstream: "+up.URL+"\n    listen: 127.0.0.1:0\n")
	st := f.p.Status(false)
	var own string
	for _, r := range st.Routes {
		if r.Name == "b" {
			own = strings.TrimPrefix(r.URL, "http://")
		}
	}
	if own == "" || own == f.main {
		t.Fatalf("route b's own address %q, main %q", own, f.main)
	}
	if r := f.get(t, "/a/x"); r.StatusCode != http.StatusOK {
		t.Fatalf("route a on the main port: %d", r.StatusCode)
	}
	req, _ := http.NewRequest("GET", "http://"+own+"/x", nil)
	if r := f.do(t, req); r.StatusCode != http.StatusOK {
		t.Fatalf("route b on its own port: %d", r.StatusCode)
	}
}
