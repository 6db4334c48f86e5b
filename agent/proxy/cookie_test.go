package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestScopeCookie(t *testing.T) {
	for _, c := range []struct {
		line, base, prefix string
		want               string // "" = dropped
	}{
		{"sid=1; Path=/", "", "/a", "sid=1; Path=/a"},
		{"sid=1", "", "/a", "sid=1; Path=/a"},
		{"sid=1; HttpOnly", "/v1", "/a", "sid=1; HttpOnly; Path=/a"},
		{"sid=1; Path=/x/y; HttpOnly; SameSite=Lax", "", "/a", "sid=1; HttpOnly; SameSite=Lax; Path=/a/x/y"},
		{"sid=1; path=/v1/tables", "/v1", "/a", "sid=1; Path=/a/tables"},
		{"sid=1; Path=/v1", "/v1", "/a", "sid=1; Path=/a"},
		{"sid=1; Path=/v1/", "/v1", "/a", "sid=1; Path=/a"},
		{"sid=1; Path=/", "/v1", "/a", "sid=1; Path=/a"},
		{"sid=1; Path=/v2", "/v1", "/a", ""},
		{"sid=1; Path=/v", "/v1", "/a", ""},
		{"sid=1; Domain=api.example.com; Path=/", "", "/a", "sid=1; Path=/a"},
		{"sid=1; DOMAIN=.example.com", "", "/a", "sid=1; Path=/a"},
		{"sid=1; Path=/; Path=/x", "", "/a", "sid=1; Path=/a/x"},
		{"sid=1; Path=relative", "", "/a", "sid=1; Path=/a"},
		{"sid=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/; Secure", "", "/a", "sid=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure; Path=/a"},
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
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "sid=abc; Path=/; Domain=127.0.0.1; HttpOnly")
		w.Header().Add("Set-Cookie", "pref=1")
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(up.Close)
	f := startProxy(t, fmt.Sprintf("routes:\n  - name: a\n    upstream: %s/v1\n  - name: own\n    upstream: %s\n    listen: localhost:0\n", up.URL, up.URL))
	resp := f.get(t, "/a/x")
	if got, want := resp.Header.Values("Set-Cookie"), []string{"sid=abc; HttpOnly; Path=/a", "pref=1; Path=/a"}; !slices.Equal(got, want) {
		t.Errorf("main port: Set-Cookie %q, want %q", got, want)
	}
	var own string
	for _, r := range f.p.Status(false).Routes {
		if r.Name == "own" {
			own = r.URL
		}
	}
	req, _ := http.NewRequest("GET", own+"/x", nil)
	resp = f.do(t, req)
	if resp.StatusCode != 200 || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("own port: HTTP %d, Set-Cookie %q", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
	if !strings.HasPrefix(own, "http://127.0.0.1:") {
		t.Errorf("own route at %q", own)
	}
}
