//go:build unix

package proxy

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// cookieUpstream sets a cookie named name with Path=/ on /set and records
// the Cookie header of every request, by path.
type cookieUpstream struct {
	*httptest.Server
	mu      sync.Mutex
	cookies map[string]string
}

func newCookieUpstream(t *testing.T, name string) *cookieUpstream {
	u := &cookieUpstream{cookies: map[string]string{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.cookies[r.URL.Path] = r.Header.Get("Cookie")
		u.mu.Unlock()
		if r.URL.Path == "/set" {
			w.Header().Add("Set-Cookie", name+"=1; Path=/")
			w.Header().Add("Set-Cookie", name+"-nopath=1")
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<p>%s</p>", r.URL.Path)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *cookieUpstream) cookie(path string) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	c, ok := u.cookies[path]
	return c, ok
}

// In a real browser: a cookie one route's upstream sets with Path=/ comes
// back to that route only, never to another route on the same origin; a
// route on its own port (cookies do not tell ports apart) sets none.
func TestRouteCookiesStayWithTheRouteInChromium(t *testing.T) {
	browser := testenv.Chromium(t)
	a, b, own := newCookieUpstream(t, "a"), newCookieUpstream(t, "b"), newCookieUpstream(t, "own")
	f := startProxy(t, fmt.Sprintf(`routes:
  - name: a
    upstream: %s
    allow_browser: true
  - name: b
    upstream: %s
    allow_browser: true
  - name: own
    upstream: %s
    allow_browser: true
    listen: localhost:0
`, a.URL, b.URL, own.URL))
	var ownURL string
	for _, r := range f.p.Status(false).Routes {
		if r.Name == "own" {
			ownURL = r.URL
		}
	}
	main := "http://" + f.main
	err := browser.With(func(ctx context.Context) error {
		for _, u := range []string{main + "/a/set", main + "/a/again", ownURL + "/set", main + "/b/set", main + "/b/after", main + "/a/last"} {
			resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(u))
			if err != nil {
				return fmt.Errorf("%s: %w", u, err)
			}
			if resp.Status != 200 {
				return fmt.Errorf("%s: HTTP %d", u, resp.Status)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	want := []struct {
		up          *cookieUpstream
		path, equal string
	}{
		{a, "/set", ""},
		{a, "/again", "a=1; a-nopath=1"}, // the route's own cookies come back
		{own, "/set", ""},
		{b, "/set", ""}, // none of a's, none of own's
		{b, "/after", "b=1; b-nopath=1"},
		{a, "/last", "a=1; a-nopath=1"}, // none of b's
	}
	for _, w := range want {
		got, ok := w.up.cookie(w.path)
		if !ok {
			t.Errorf("%s never reached its upstream", w.path)
			continue
		}
		if sortCookies(got) != sortCookies(w.equal) {
			t.Errorf("%s%s carried cookies %q, want %q", w.up.URL, w.path, got, w.equal)
		}
	}
	if got, _ := own.cookie("/set"); got != "" {
		t.Errorf("own port got cookies %q", got)
	}
}

func sortCookies(h string) string {
	parts := strings.Split(h, "; ")
	for i := range parts {
		for j := i + 1; j < len(parts); j++ {
			if parts[j] < parts[i] {
				parts[i], parts[j] = parts[j], parts[i]
			}
		}
	}
	return strings.Join(parts, "; ")
}

// In a real browser that holds Jupyter's cookies for 127.0.0.1 (set by a
// server on another port: cookies do not tell ports apart), a navigation to
// an allow_browser route carries none of them upstream, while the route's
// own cookie makes the round trip under its own name.
func TestJupyterCookiesNeverReachARouteInChromium(t *testing.T) {
	browser := testenv.Chromium(t)
	jupyter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", `username-127-0-0-1-8888="2|1:0|10:1700000000|23:username-127-0-0-1-8888|44:secret"; Path=/; HttpOnly`)
		w.Header().Add("Set-Cookie", "_xsrf=2|deadbeef|cafe|1700000000; Path=/")
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<p>jupyter</p><pre>%s</pre>", r.Header.Get("Cookie"))
	}))
	t.Cleanup(jupyter.Close)
	a := newCookieUpstream(t, "a")
	f := startProxy(t, fmt.Sprintf("routes:\n  - name: a\n    upstream: %s\n    allow_browser: true\n", a.URL))
	main := "http://" + f.main
	var jupyterSaw string
	err := browser.With(func(ctx context.Context) error {
		for _, u := range []string{jupyter.URL + "/tree", main + "/a/set", main + "/a/again"} {
			resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(u))
			if err != nil {
				return fmt.Errorf("%s: %w", u, err)
			}
			if resp.Status != 200 {
				return fmt.Errorf("%s: HTTP %d", u, resp.Status)
			}
		}
		// The browser does hold Jupyter's cookies and sends them to
		// 127.0.0.1 (Jupyter shows what it got back).
		if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(jupyter.URL+"/again")); err != nil {
			return err
		}
		var err error
		jupyterSaw, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("pre").textContent`))
		return err
	})
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if !strings.Contains(jupyterSaw, "username-127-0-0-1-8888=") || !strings.Contains(jupyterSaw, "_xsrf=") {
		t.Fatalf("the browser does not hold Jupyter's cookies (the test proves nothing): %q", jupyterSaw)
	}
	for path, want := range map[string]string{"/set": "", "/again": "a=1; a-nopath=1"} {
		got, ok := a.cookie(path)
		if !ok {
			t.Errorf("%s never reached the upstream", path)
		} else if sortCookies(got) != sortCookies(want) {
			t.Errorf("upstream %s got cookies %q, want %q", path, got, want)
		}
	}
}
