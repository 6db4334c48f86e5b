package ipc

import (
	"net/url"
	"strings"
	"testing"
)

func TestCheckProofTarget(t *testing.T) {
	good := []struct{ method, url, nonce string }{
		{"GET", "https://api.example/x?y=1#f", ""},
		{"POST", "http://127.0.0.1:8080/", "eyJ7S_zG.eyJH0-Z.HX4w-7v"},
		{"PROPFIND", "https://[::1]:443/a%20b", strings.Repeat("n", MaxProofNonce)},
	}
	for _, g := range good {
		if err := CheckProofTarget(g.method, g.url, g.nonce); err != nil {
			t.Errorf("%s %s: %v", g.method, g.url, err)
		}
	}
	bad := []struct{ method, url, nonce, field string }{
		{"", "https://a/", "", "method"},
		{"GE T", "https://a/", "", "method"},
		{"GET\r\nX: y", "https://a/", "", "method"},
		{strings.Repeat("A", MaxProofMethod+1), "https://a/", "", "method"},
		{"GET", "", "", "url"},
		{"GET", "/relative", "", "url"},
		{"GET", "ftp://a/", "", "url"},
		{"GET", "https:///nohost", "", "url"},
		{"GET", "https:opaque", "", "url"},
		{"GET", "https://user:pw@a/", "", "url"},
		{"GET", "https://a/x y", "", "url"},
		{"GET", "https://bücher.example/", "", "url"},
		{"GET", "https://b%C3%BCcher.example/", "", "url"},
		{"GET", "https://a/" + strings.Repeat("x", MaxProofURL), "", "url"},
		{"GET", "https://a/", strings.Repeat("n", MaxProofNonce+1), "nonce"},
		{"GET", "https://a/", "a b", "nonce"},
		{"GET", "https://a/", `a"b`, "nonce"},
		{"GET", "https://a/", "é", "nonce"},
	}
	for _, b := range bad {
		err := CheckProofTarget(b.method, b.url, b.nonce)
		if err == nil || !strings.HasPrefix(err.Error(), b.field) {
			t.Errorf("%q %q %q: %v, want an error about %s", b.method, b.url, b.nonce, err, b.field)
		}
	}
}

// Whatever CheckProofTarget accepts is safe to sign and to print: an
// absolute http(s) URL with a host and no userinfo, a method and a nonce
// without spaces, line breaks or quotes.
func FuzzCheckProofTarget(f *testing.F) {
	f.Add("GET", "https://api.example/x?y", "")
	f.Add("POST", "http://127.0.0.1:1/", "abc")
	f.Add("G\nET", "https://u@h/", "\"")
	f.Fuzz(func(t *testing.T, method, raw, nonce string) {
		if CheckProofTarget(method, raw, nonce) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || u.User != nil || (u.Scheme != "http" && u.Scheme != "https") || !isASCII(u.Hostname()) {
			t.Fatalf("accepted url %q", raw)
		}
		if strings.ContainsAny(method+nonce, " \r\n\t\"\\\x00") || strings.ContainsAny(raw, " \r\n\t") {
			t.Fatalf("accepted method %q nonce %q", method, nonce)
		}
		if len(method) > MaxProofMethod || len(raw) > MaxProofURL || len(nonce) > MaxProofNonce {
			t.Fatal("accepted past the limits")
		}
	})
}
