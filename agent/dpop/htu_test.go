package dpop

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
)

func signedHTU(t *testing.T, raw string) string {
	t.Helper()
	k, _ := NewKey()
	jwt, err := Proof{Method: "GET", URL: raw, Now: time.Now()}.Sign(k)
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[1])
	var c struct{ HTU string }
	json.Unmarshal(b, &c)
	return c.HTU
}

// htu is the URL as the server sees it, normalised where that can not
// change what it sees (RFC 3986 6.2.2-6.2.3): Keycloak compares
// java.net.URI.equals, where an explicit default port and none differ, and
// a route whose upstream says https://api:443 must still be proved.
// Percent-encoding stays as sent (raw comparers see it so); dot segments
// go (clients remove them before sending).
func TestTargetURIIsNormalised(t *testing.T) {
	for raw, want := range map[string]string{
		"https://api.example:443/x":   "https://api.example/x",
		"http://api.example:80/x":     "http://api.example/x",
		"http://api.example:8080/x":   "http://api.example:8080/x",
		"https://api.example:80/x":    "https://api.example:80/x",
		"HTTPS://API.Example/X":       "https://api.example/X",
		"https://api.example":         "https://api.example/",
		"https://api.example?q=1":     "https://api.example/",
		"https://api.example/x?":      "https://api.example/x",
		"https://api.example/x#frag":  "https://api.example/x",
		"https://u:p@api.example/x":   "https://api.example/x",
		"https://api.example:/x":      "https://api.example/x",
		"https://api.example/%7euser": "https://api.example/%7euser",
		"https://api.example/a%2Fb":   "https://api.example/a%2Fb",
		"https://api.example/a b":     "https://api.example/a%20b",
		"https://api.example/a/../b":  "https://api.example/b",
		"https://api.example/a/./b/":  "https://api.example/a/b/",
		"https://api.example/a/b/..":  "https://api.example/a/",
		"https://api.example/../../x": "https://api.example/x",
		"https://api.example/a..b/.x": "https://api.example/a..b/.x",
		"https://[FE80::1]:443/x":     "https://[fe80::1]/x",
		"https://[::1]:8443/x":        "https://[::1]:8443/x",
		"http://[fe80::1%25eth0]:80/": "http://[fe80::1%25eth0]/",
	} {
		if got := signedHTU(t, raw); got != want {
			t.Errorf("htu of %s = %s, want %s", raw, got, want)
		}
	}
}

// A host that is not ASCII is refused (the client's IDNA form is not
// ours to guess), as is a URL that is not absolute; neither error repeats
// the URL (it may carry secrets in its query).
func TestTargetURIRefuses(t *testing.T) {
	for _, raw := range []string{"https://bücher.example/a?secret=s3cr3t", "/relative?secret=s3cr3t", "mailto:x@y?secret=s3cr3t", "https:///x?secret=s3cr3t"} {
		got, err := TargetURI(raw)
		if err == nil {
			t.Errorf("TargetURI(%q) = %q, want an error", raw, got)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("the error repeats the URL: %v", err)
		}
	}
}

// Whatever TargetURI makes parses back as an absolute URL without query,
// fragment or userinfo, and is its own normal form.
func FuzzTargetURI(f *testing.F) {
	for _, s := range []string{"https://api.example:443/a/../b?q#f", "http://[fe80::1%25eth0]:80/", "https://u@h:/./x/..", "https://h/%7e/%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		htu, err := TargetURI(raw)
		if err != nil {
			return
		}
		u, err := url.Parse(htu)
		if err != nil || u.Host == "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
			t.Fatalf("TargetURI(%q) = %q, which is no bare absolute URL (%v)", raw, htu, err)
		}
		if again, err := TargetURI(htu); err != nil || again != htu {
			t.Fatalf("TargetURI(%q) = %q, but TargetURI of that = %q (%v)", raw, htu, again, err)
		}
	})
}
