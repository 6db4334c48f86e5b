package launcher

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	Transport:     &http.Transport{Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func get(t *testing.T, url string, host string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// A link redirects once, to its target, and then says it was used.
func TestLinkIsOneTime(t *testing.T) {
	l, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	target := "https://sso.example.com/realms/a/protocol/openid-connect/auth?state=S&code_challenge=C"
	link := l.Link(target, time.Now().Add(time.Minute))
	if strings.Contains(link, "state") || !strings.HasPrefix(link, "http://127.0.0.1:") {
		t.Fatalf("link %q", link)
	}
	resp := get(t, link, "")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != target || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("first use: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get(t, link, ""); resp.StatusCode != http.StatusGone || resp.Header.Get("Location") != "" {
		t.Fatalf("second use: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// A link dies with its sign-in; an unknown path and a foreign Host (DNS
// rebinding) get nothing, and leave a good link usable.
func TestLinkRefusals(t *testing.T) {
	l, err := Start(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	old := l.Link("https://sso.example.com/old", time.Now().Add(-time.Second))
	if resp := get(t, old, ""); resp.StatusCode != http.StatusGone {
		t.Fatalf("expired link: %d", resp.StatusCode)
	}
	good := l.Link("https://sso.example.com/good", time.Now().Add(time.Minute))
	base := good[:strings.LastIndex(good, "/")]
	if resp := get(t, base+"/guess", ""); resp.StatusCode != http.StatusGone {
		t.Fatalf("unknown link: %d", resp.StatusCode)
	}
	if resp := get(t, good, "rebind.example.com"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Host: %d", resp.StatusCode)
	}
	if resp := get(t, good, ""); resp.StatusCode != http.StatusFound {
		t.Fatalf("the good link after the refusals: %d", resp.StatusCode)
	}
	if err := l.Open(nil, "https://x", time.Now().Add(time.Minute)); err != ErrNoBrowser {
		t.Fatalf("Open without an opener: %v", err)
	}
}
