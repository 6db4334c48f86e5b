//go:build unix

package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

// recorder is a loopback http upstream that serves a page and records
// which requests carried a token.
type recorder struct {
	url  string
	mu   sync.Mutex
	hits []string // path, and "+token" when Authorization was set
}

func startRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit := r.URL.Path
		if r.Header.Get("Authorization") != "" {
			hit += "+token"
		}
		rec.mu.Lock()
		rec.hits = append(rec.hits, hit)
		rec.mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><body><p id="p">page</p><script>document.title = "scripts ran"</script></body></html>`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	rec.url = "http://" + ln.Addr().String()
	return rec
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.hits...)
}

func writeConfig(t *testing.T, body string) {
	t.Helper()
	path := os.Getenv("KC_AGENT_CONFIG")
	os.MkdirAll(filepath.Dir(path), 0o700)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// In a real browser: a route is not opened as a page unless it allows it;
// a page served through an allowed route is sandboxed (its scripts do not
// run) and even script run in it through DevTools can not spend another
// route's token or read its answer.
func TestProxyBrowserModelInChromium(t *testing.T) {
	testenv.SecretService(t)
	browser := testenv.Chromium(t)
	e := newCLIEnv(t)
	e.login(keycloak.RealmTest, "alice", "alice-pw")
	pages, secrets := startRecorder(t), startRecorder(t)
	data, _ := os.ReadFile(os.Getenv("KC_AGENT_CONFIG"))
	writeConfig(t, string(data)+fmt.Sprintf(`proxy:
  listen: 127.0.0.1:0
routes:
  - name: pages
    upstream: %s
    profile: %s
    allow_browser: true
  - name: secrets
    upstream: %s
    profile: %s
`, pages.url, e.profile, secrets.url, e.profile))
	agent := e.startAgent()
	ps, err := agent.client.Proxy(context.Background())
	if err != nil || !ps.Running {
		t.Fatalf("proxy: %v %+v", err, ps)
	}
	base := "http://" + ps.Addr
	var navSecret, navPage int64
	var title, fetchResult, noCorsResult string
	err = browser.With(func(ctx context.Context) error {
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+"/secrets/data"))
		if err != nil {
			return err
		}
		navSecret = resp.Status
		resp, err = chromedp.Run(ctx, chromedp.NavigateResponse(base+"/pages/index.html"))
		if err != nil {
			return err
		}
		navPage = resp.Status
		if title, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.title`)); err != nil {
			return err
		}
		fetchResult, err = chromedp.Run(ctx, chromedp.Evaluate[string](
			`fetch("/secrets/data").then(r => r.status + " " + r.text()).catch(e => "blocked: " + e)`, chromedp.EvalAwaitPromise))
		if err != nil {
			return err
		}
		noCorsResult, err = chromedp.Run(ctx, chromedp.Evaluate[string](
			`fetch("/secrets/data", {mode: "no-cors", credentials: "include"}).then(r => "type " + r.type + " status " + r.status).catch(e => "blocked: " + e)`, chromedp.EvalAwaitPromise))
		return err
	})
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if navSecret != 403 {
		t.Errorf("navigating to a route without allow_browser: HTTP %d, want 403", navSecret)
	}
	if navPage != 200 {
		t.Errorf("navigating to an allowed route: HTTP %d, want 200", navPage)
	}
	if title == "scripts ran" {
		t.Error("a page served through a route ran its scripts (no sandbox)")
	}
	if !strings.HasPrefix(fetchResult, "blocked") && !strings.HasPrefix(fetchResult, "403") {
		t.Errorf("fetch from the page to another route: %q", fetchResult)
	}
	if strings.Contains(noCorsResult, "status 200") {
		t.Errorf("no-cors fetch to another route: %q", noCorsResult)
	}
	for _, hit := range secrets.seen() {
		t.Errorf("a browser request reached the other route's upstream: %s", hit)
	}
	if hits := pages.seen(); len(hits) != 1 || hits[0] != "/index.html+token" {
		t.Errorf("the allowed route's upstream saw %v", hits)
	}
	st, _ := agent.client.Status(context.Background())
	if st.Proxy.Refused["browser"] < 2 {
		t.Errorf("browser refusals not counted in status: %v", st.Proxy.Refused)
	}
	if !strings.Contains(agent.log.String(), "proxy refused a request") {
		t.Error("refused browser requests are not logged")
	}
}

// curl --path-as-is with dot segments, encoded or not, never reaches the
// upstream outside the route's base path; plain http through the forward
// proxy gets no token without intercept: true; a CONNECT back to the
// proxy is refused. Real curl, real agent, real token.
func TestProxyPathsAndPlainHTTPWithCurl(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.login(keycloak.RealmTest, "alice", "alice-pw")
	up := startRecorder(t)
	data, _ := os.ReadFile(os.Getenv("KC_AGENT_CONFIG"))
	writeConfig(t, string(data)+fmt.Sprintf(`proxy:
  listen: 127.0.0.1:0
routes:
  - name: api
    upstream: %s/api
    profile: %s
`, up.url, e.profile))
	agent := e.startAgent()
	code, stdout, stderr := e.run("env")
	if code != 0 {
		t.Fatalf("env: %s", stderr)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		k, v, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		vars[k] = strings.Trim(v, "'")
	}
	route := vars["KC_AGENT_URL_API"]
	curl := func(args ...string) string {
		out, _ := exec.Command("curl", append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...).Output()
		return string(out)
	}
	if got := curl(route + "/ok"); got != "200" {
		t.Fatalf("plain route request: %s", got)
	}
	for _, p := range []string{"/../x", "/%2e%2e/x", "/%2E%2E/x", "/..%2fx", "/./x"} {
		if got := curl("--path-as-is", route+p); got != "400" {
			t.Errorf("curl --path-as-is %s: HTTP %s, want 400", p, got)
		}
	}
	if got := curl("-x", vars["HTTP_PROXY"], "--noproxy", "", up.url+"/api/forward"); got != "200" {
		t.Fatalf("plain http through the forward proxy: %s", got)
	}
	hits := up.seen()
	if len(hits) != 2 || hits[0] != "/api/ok+token" || hits[1] != "/api/forward" {
		t.Fatalf("the upstream saw %v; want the route's request with a token and the forward one without", hits)
	}
	ps, _ := agent.client.Proxy(context.Background())
	out, _ := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_connect}", "-p", "-x", vars["HTTP_PROXY"], "--noproxy", "", "http://"+ps.Addr+"/").Output()
	if string(out) != "403" {
		t.Errorf("CONNECT back to the proxy: %s, want 403", out)
	}
	st, _ := agent.client.Status(context.Background())
	if st.Proxy.Refused["unsafe_path"] != 5 || st.Proxy.Refused["proxy_loop"] != 1 {
		t.Errorf("refusals in status: %v", st.Proxy.Refused)
	}
}

// A scope Keycloak refuses fails that one request (exit 1, naming the
// scope); the profile's own tokens and its routes keep working.
func TestInvalidScopeFailsOnlyThatRequest(t *testing.T) {
	e, agent, _ := loggedInAgent(t, keycloak.RealmTest, "dave")
	code, _, stderr := e.run("token", "--profile", e.profile, "--scope", "bogus-scope")
	if code != exitError || !strings.Contains(stderr, "bogus-scope") || strings.Contains(stderr, "kc-agent login") {
		t.Fatalf("bogus scope: exit %d: %s", code, stderr)
	}
	again, code, stderr := e.tokenJSON()
	if code != 0 || again.AccessToken == "" {
		t.Fatalf("after a bad scope the profile stopped serving: exit %d: %s", code, stderr)
	}
	st, _ := agent.client.Status(context.Background())
	for _, p := range st.Profiles {
		if p.Name == e.profile && p.State != ipc.StateActive {
			t.Fatalf("profile state after a bad scope: %s (%s)", p.State, p.LastError)
		}
	}
}

// A config change that can not be applied (a missing ca_file, a route on
// a port in use, an empty file) keeps the running proxy and every profile,
// and says why in status.
func TestHotReloadKeepsWorkingProxy(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.login(keycloak.RealmTest, "carol", "carol-pw")
	up := startRecorder(t)
	data, _ := os.ReadFile(os.Getenv("KC_AGENT_CONFIG"))
	good := string(data) + fmt.Sprintf(`proxy:
  listen: 127.0.0.1:0
routes:
  - name: api
    upstream: %s
    profile: %s
`, up.url, e.profile)
	writeConfig(t, good)
	agent := e.startAgent()
	ps, _ := agent.client.Proxy(context.Background())
	route := ps.Routes[0].URL
	get := func() int {
		resp, err := http.Get(route + "/x")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get() != 200 {
		t.Fatal("route does not work before the reloads")
	}
	busy, _ := net.Listen("tcp", "127.0.0.1:0")
	defer busy.Close()
	for name, cfg := range map[string]string{
		"missing ca_file": strings.Replace(good, "proxy:\n", "proxy:\n  ca_file: /nonexistent/ca.pem\n", 1),
		"busy port":       good + fmt.Sprintf("  - name: other\n    upstream: %s\n    profile: %s\n    listen: %s\n", up.url, e.profile, busy.Addr()),
		"empty file":      "",
	} {
		writeConfig(t, cfg)
		c := agent.client
		waitFor(t, func() bool {
			st, err := c.Status(context.Background())
			return err == nil && st.ConfigError != ""
		}, "the rejected change ("+name+") to show in status")
		if got := get(); got != 200 {
			t.Fatalf("%s: the running proxy stopped (HTTP %d)", name, got)
		}
		st, _ := c.Status(context.Background())
		if len(st.Profiles) == 0 {
			t.Fatalf("%s: the profiles were dropped", name)
		}
		if code, _, stderr := e.run("token", "--profile", e.profile); code != 0 {
			t.Fatalf("%s: token stopped working: %s", name, stderr)
		}
		writeConfig(t, good)
		waitFor(t, func() bool { st, err := c.Status(context.Background()); return err == nil && st.ConfigError == "" }, "the good config again")
	}
}

// A config directory another user can write is refused: the agent serves
// nothing from it and says why.
func TestConfigOthersCanWriteIsRefused(t *testing.T) {
	e := newCLIEnv(t)
	writeConfig(t, "profiles:\n  default:\n    issuer: https://sso.example.com/realms/work\n")
	os.Chmod(filepath.Dir(os.Getenv("KC_AGENT_CONFIG")), 0o777)
	code, _, stderr := e.run("logout")
	if code == 0 || !strings.Contains(stderr, "other users could rewrite it") {
		t.Fatalf("a 0777 config directory was used: exit %d: %s", code, stderr)
	}
	agent := e.startAgent()
	st, err := agent.client.Status(context.Background())
	if err != nil || !strings.Contains(st.ConfigError, "other users could rewrite it") || len(st.Profiles) != 0 {
		t.Fatalf("the agent used a config others can write: %v %+v", err, st)
	}
}
