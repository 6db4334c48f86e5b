package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestScopeCookie(t *testing.T) {
	for _, c := range []struct {
		line, base, prefix string
		want               string // "" = dropped
	}{
		{"sid=1; Path=/", "", "/a", "kcr_a~sid=1; Path=/a"},
		{"sid=1", "", "/a", "kcr_a~sid=1; Path=/a"},
		{"sid=1; HttpOnly", "/v1", "/a", "kcr_a~sid=1; HttpOnly; Path=/a"},
		{"sid=1; Path=/x/y; HttpOnly; SameSite=Lax", "", "/a", "kcr_a~sid=1; HttpOnly; SameSite=Lax; Path=/a/x/y"},
		{"sid=1; path=/v1/tables", "/v1", "/a", "kcr_a~sid=1; Path=/a/tables"},
		{"sid=1; Path=/v1", "/v1", "/a", "kcr_a~sid=1; Path=/a"},
		{"sid=1; Path=/v1/", "/v1", "/a", "kcr_a~sid=1; Path=/a"},
		{"sid=1; Path=/", "/v1", "/a", "kcr_a~sid=1; Path=/a"},
		{"sid=1; Path=/v2", "/v1", "/a", ""},
		{"sid=1; Path=/v", "/v1", "/a", ""},
		{"sid=1; Domain=api.example.com; Path=/", "", "/a", "kcr_a~sid=1; Path=/a"},
		{"sid=1; DOMAIN=.example.com", "", "/a", "kcr_a~sid=1; Path=/a"},
		{"sid=1; Path=/; Path=/x", "", "/a", "kcr_a~sid=1; Path=/a/x"},
		{"sid=1; Path=relative", "", "/a", "kcr_a~sid=1; Path=/a"},
		{" sid = 1 ;Path=/", "", "/a", "kcr_a~sid=1; Path=/a"},
		{"sid=a=b", "", "/a", "kcr_a~sid=a=b; Path=/a"},
		{"kcr_b~sid=1", "", "/a", "kcr_a~kcr_b~sid=1; Path=/a"}, // another route's name stays in this one's namespace
		{"=1", "", "/a", ""},      // nameless: dropped
		{"novalue", "", "/a", ""}, // ditto
		{"sid=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/; Secure", "", "/a", "kcr_a~sid=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure; Path=/a"},
	} {
		got, ok := scopeCookie(c.line, c.base, c.prefix)
		if !ok {
			got = ""
		}
		if got != c.want {
			t.Errorf("%q (base %q, prefix %q): got %q, want %q", c.line, c.base, c.prefix, got, c.want)
		}
	}
}

func TestRouteCookies(t *testing.T) {
	ns := cookieNS("a")
	for _, c := range []struct {
		in   []string
		ns   string
		want string
	}{
		// Jupyter's cookies and other routes' stay; the route's own lose the prefix.
		{[]string{"username-127-0-0-1-8888=\"2|1:0|x\"; _xsrf=2|abc; kcr_a~sid=1; kcr_b~sid=2"}, ns, "sid=1"},
		{[]string{"kcr_a~sid=1;kcr_a~pref=x=y", "kcr_a~late=3"}, ns, "sid=1; pref=x=y; late=3"},
		{[]string{" kcr_a~sid = 1 "}, ns, "sid=1"},
		{[]string{"kcr_a~=1; kcr_a~; kcr_a_b~x=1; kcr_a~~x=2"}, ns, "~x=2"},
		{[]string{"KCR_A~sid=1; kcr_A~sid=1"}, ns, ""}, // names are case-sensitive
		{[]string{"kcr_a~sid=1; _xsrf=1"}, "", ""},     // a route's own port keeps none
		{nil, ns, ""},
	} {
		if got := routeCookies(c.in, c.ns); got != c.want {
			t.Errorf("routeCookies(%q, %q) = %q, want %q", c.in, c.ns, got, c.want)
		}
	}
}

// FuzzRouteCookies: whatever the browser sends, the upstream gets only
// pairs that were in the route's namespace, each with its own name.
func FuzzRouteCookies(f *testing.F) {
	for _, s := range []string{"kcr_a~sid=1; _xsrf=2", "username-127-0-0-1-8888=x", "kcr_a~=1", ";;=;", "kcr_a~a=b=c; kcr_a~ x =  y "} {
		f.Add(s)
	}
	ns := cookieNS("a")
	f.Fuzz(func(t *testing.T, h string) {
		out := routeCookies([]string{h}, ns)
		if out == "" {
			return
		}
		if !strings.Contains(h, ns) {
			t.Fatalf("%q has none of the route's cookies, but %q went on", h, out)
		}
		for _, pair := range strings.Split(out, "; ") {
			name, value, ok := strings.Cut(pair, "=")
			if !ok || name == "" || strings.Contains(pair, ";") {
				t.Fatalf("%q gave a malformed pair %q", h, pair)
			}
			if !strings.Contains(h, ns+name) || !strings.Contains(h, value) {
				t.Fatalf("%q gave %q, which it did not hold in the route's namespace", h, pair)
			}
		}
	})
}

// FuzzCookieRoundTrip: a cookie an upstream sets comes back to it, from
// the browser's jar, as the upstream set it (name and value), and to no
// other route.
func FuzzCookieRoundTrip(f *testing.F) {
	for _, s := range []string{"sid=1; Path=/", " sid = 1 ", "a=b=c; HttpOnly", "=x", "x", "kcr_b~y=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		out, ok := scopeCookie(line, "", "/a")
		if !ok {
			return
		}
		jar := strings.SplitN(out, ";", 2)[0] // what the browser keeps and sends
		name, value, _ := strings.Cut(strings.SplitN(line, ";", 2)[0], "=")
		want := strings.Trim(name, " \t") + "=" + strings.Trim(value, " \t")
		if got := routeCookies([]string{jar}, cookieNS("a")); got != want {
			t.Fatalf("%q came back as %q, want %q", line, got, want)
		}
		if got := routeCookies([]string{jar}, cookieNS("b")); got != "" {
			t.Fatalf("%q reached another route as %q", line, got)
		}
	})
}

func TestPathMatch(t *testing.T) {
	for _, c := range []struct {
		req, cookie string
		want        bool
	}{
		{"/a", "/a", true}, {"/a/x", "/a", true}, {"/ab", "/a", false}, {"/a/x", "/a/", true}, {"/", "/a", false}, {"/v1", "/", true},
	} {
		if pathMatch(c.req, c.cookie) != c.want {
			t.Errorf("pathMatch(%q, %q) != %v", c.req, c.cookie, c.want)
		}
	}
}

// Through the real proxy: on the main port a route's cookies are scoped
// to it; on a route's own port they are dropped.
func TestReverseRouteCookies(t *testing.T) {
	var mu sync.Mutex
	var got []string // the Cookie headers upstream, in order
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, strings.Join(r.Header.Values("Cookie"), " | "))
		mu.Unlock()
		w.Header().Add("Set-Cookie", "sid=abc; Path=/; Domain=127.0.0.1; HttpOnly")
		w.Header().Add("Set-Cookie", "pref=1")
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(up.Close)
	f := startProxy(t, fmt.Sprintf("routes:\n  - name: a\n    upstream: %s/v1\n  - name: own\n    upstream: %s\n    listen: localhost:0\n", up.URL, up.URL))
	const jar = "username-127-0-0-1-8888=jupyter; _xsrf=x; kcr_a~sid=abc; kcr_own~sid=o; kcr_b~sid=b"
	req, _ := http.NewRequest("GET", "http://"+f.main+"/a/x", nil)
	req.Header.Set("Cookie", jar)
	resp := f.do(t, req)
	if got, want := resp.Header.Values("Set-Cookie"), []string{"kcr_a~sid=abc; HttpOnly; Path=/a", "kcr_a~pref=1; Path=/a"}; !slices.Equal(got, want) {
		t.Errorf("main port: Set-Cookie %q, want %q", got, want)
	}
	var own string
	for _, r := range f.p.Status(false).Routes {
		if r.Name == "own" {
			own = r.URL
		}
	}
	req, _ = http.NewRequest("GET", own+"/x", nil)
	req.Header.Set("Cookie", jar)
	resp = f.do(t, req)
	if resp.StatusCode != 200 || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("own port: HTTP %d, Set-Cookie %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if !strings.HasPrefix(own, "http://127.0.0.1:") {
		t.Errorf("own route at %q", own)
	}
	// Upstream: the main port's route got its own cookie, with its own
	// name, and nothing else; the route on its own port got none.
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"sid=abc", ""}; !slices.Equal(got, want) {
		t.Errorf("Cookie headers upstream: %q, want %q", got, want)
	}
}
