package oidc

import (
	"github.com/kc-agent/kc-agent/internal/idptext"

	"net/url"
	"strings"
	"testing"
)

func TestCheckLink(t *testing.T) {
	const httpsIssuer = "https://sso.example.com/realms/a"
	const loopIssuer = "http://127.0.0.1:8080/realms/a"
	cases := []struct {
		issuer, link string
		ok           bool
	}{
		{httpsIssuer, "https://sso.example.com/realms/a/device", true},
		{httpsIssuer, "https://sso.example.com/realms/a/device?user_code=WXYZ-ABCD", true},
		{httpsIssuer, "https://login.other.example/device", true},
		{loopIssuer, "http://127.0.0.1:8080/realms/a/device?user_code=X", true},
		{httpsIssuer, "javascript:alert(1)", false},
		{httpsIssuer, "JavaScript://sso.example.com/%0aalert(1)", false},
		{httpsIssuer, "data:text/html,<script>alert(1)</script>", false},
		{httpsIssuer, "file:///etc/passwd", false},
		{httpsIssuer, "vbscript:msgbox", false},
		{httpsIssuer, "http://sso.example.com/realms/a/device", false},
		{httpsIssuer, "http://127.0.0.1:8080/realms/a/device", false},
		{loopIssuer, "http://127.0.0.1:8081/realms/a/device", false},
		{loopIssuer, "http://localhost:8080/realms/a/device", false},
		{loopIssuer, "http://evil.example:8080/realms/a/device", false},
		{"http://sso.example.com/realms/a", "http://sso.example.com/realms/a/device", false},
		{httpsIssuer, "https://user:pw@sso.example.com/device", false},
		{httpsIssuer, "https:sso.example.com/device", false},
		{httpsIssuer, "//sso.example.com/device", false},
		{httpsIssuer, "/realms/a/device", false},
		{httpsIssuer, "", false},
		{httpsIssuer, "https://sso.example.com/device\u202e", false},
		{httpsIssuer, "https://sso.example.com/device\u009b31m", false},
		{httpsIssuer, "https://sso.example.com/device\x1b[31m", false},
	}
	for _, c := range cases {
		err := CheckLink(c.issuer, "verification_uri", c.link)
		if (err == nil) != c.ok {
			t.Errorf("CheckLink(%q, %q) = %v, want ok=%v", c.issuer, c.link, err, c.ok)
			continue
		}
		if err != nil {
			msg := err.Error()
			if KindOf(err) != KindConfig || HintOf(err) == "" || !strings.Contains(msg, "verification_uri") || strings.ContainsAny(msg, "\x1b\u202e\u009b") {
				t.Errorf("CheckLink(%q): error %q (hint %q)", c.link, msg, HintOf(err))
			}
		}
	}
}

func FuzzCheckLink(f *testing.F) {
	for _, s := range []string{"https://sso.example.com/device", "javascript:alert(1)", "http://127.0.0.1:8080/x", "https://a@b/", "\x00"} {
		f.Add("http://127.0.0.1:8080/realms/a", s)
	}
	f.Fuzz(func(t *testing.T, issuer, link string) {
		if CheckLink(issuer, "verification_uri", link) != nil {
			return
		}
		u, err := url.Parse(link)
		if err != nil || idptext.Printable(link) != link || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") {
			t.Fatalf("accepted %q for issuer %q", link, issuer)
		}
		if u.Scheme == "http" && !strings.HasPrefix(strings.ToLower(link), "http://") {
			t.Fatalf("accepted %q", link)
		}
	})
}
