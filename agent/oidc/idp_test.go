package oidc

import (
	"encoding/json"
	"net/url"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// The vectors the Python client runs too (test_printable_vectors).
func TestPrintableVectors(t *testing.T) {
	data, err := os.ReadFile("../../ipc/testdata/idp_strings.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Printable []struct{ Name, In, Want string }
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Printable) < 10 {
		t.Fatalf("only %d vectors", len(v.Printable))
	}
	for _, c := range v.Printable {
		if got := Printable(c.In); got != c.Want {
			t.Errorf("%s: Printable(%q) = %q, want %q", c.Name, c.In, got, c.Want)
		}
	}
	// Invalid UTF-8 can not travel in JSON; Go sees it from the wire.
	if got := Printable("a\xffb\x1b"); got != "a\uFFFDb" {
		t.Errorf("invalid UTF-8: %q", got)
	}
}

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

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"WXYZ-ABCD", "\x1b[31mred", "a\u202eb", "\xff\xfe", "ok\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := Printable(s)
		if !utf8.ValidString(p) || strings.IndexFunc(p, stripped) >= 0 || Printable(p) != p {
			t.Fatalf("Printable(%q) = %q", s, p)
		}
	})
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
		if err != nil || Printable(link) != link || u.User != nil || (u.Scheme != "https" && u.Scheme != "http") {
			t.Fatalf("accepted %q for issuer %q", link, issuer)
		}
		if u.Scheme == "http" && !strings.HasPrefix(strings.ToLower(link), "http://") {
			t.Fatalf("accepted %q", link)
		}
	})
}
