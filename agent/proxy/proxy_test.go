package proxy

import (
	"encoding/base64"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

func FuzzConnectTarget(f *testing.F) {
	for _, s := range []string{"api.example.com:443", "[::1]:8443", "a:0", "a:99999", "a b:1", ":443", "x@y:1", "host"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := parseConnectTarget(s)
		if err != nil {
			return
		}
		if host == "" || strings.ContainsAny(host, "/ @?#") {
			t.Fatalf("accepted host %q", host)
		}
		if _, _, err := net.SplitHostPort(net.JoinHostPort(host, port)); err != nil {
			t.Fatalf("accepted %q gives an unusable target", s)
		}
	})
}

// FuzzProxyAuth: a header is accepted only when it is Basic credentials
// that decode to exactly kc:<secret>.
func FuzzProxyAuth(f *testing.F) {
	const secret = "s3cret-s3cret-s3cret-s3cret-s3cret"
	good := "Basic " + base64.StdEncoding.EncodeToString([]byte("kc:"+secret))
	f.Add(good)
	f.Add("basic " + base64.StdEncoding.EncodeToString([]byte("kc:"+secret)))
	f.Add("Basic Og==")
	f.Add("Bearer x")
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("kc:"+secret+"\x00")))
	f.Add("Basic " + base64.StdEncoding.EncodeToString([]byte("kc:"+secret[:len(secret)-1])))
	f.Fuzz(func(t *testing.T, h string) {
		if !checkProxyAuth(h, secret) {
			return
		}
		if len(h) < 6 || !strings.EqualFold(h[:6], "basic ") {
			t.Fatalf("accepted %q without the Basic scheme", h)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[6:]))
		if err != nil || string(raw) != "kc:"+secret {
			t.Fatalf("accepted %q, which does not decode to the credentials", h)
		}
	})
}

func TestProxyAuth(t *testing.T) {
	enc := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	secret := "0123456789abcdef0123456789abcdef"
	for h, want := range map[string]bool{
		enc("kc:" + secret):       true,
		enc("kc:" + secret + "x"): false,
		enc("other:" + secret):    false,
		enc(secret):               false,
		"":                        false,
		"Basic !!!":               false,
	} {
		if got := checkProxyAuth(h, secret); got != want {
			t.Errorf("%q: got %v", h, got)
		}
	}
}

func TestOriginKeyIsExact(t *testing.T) {
	cases := [][2]string{
		{originKey("https", "API.example.com"), "https://api.example.com:443"},
		{originKey("https", "api.example.com:443"), "https://api.example.com:443"},
		{originKey("http", "api.example.com"), "http://api.example.com:80"},
		{originKey("https", "[::1]:8443"), "https://::1:8443"},
	}
	for _, c := range cases {
		if c[0] != c[1] {
			t.Errorf("got %s want %s", c[0], c[1])
		}
	}
	if originKey("https", "api.example.com:8443") == originKey("https", "api.example.com") {
		t.Error("ports must differ")
	}
}

func TestLoopbackHost(t *testing.T) {
	for h, want := range map[string]bool{
		"127.0.0.1:8421": true, "localhost:8421": true, "[::1]:8421": true, "127.0.0.1": true,
		"evil.example.com:8421": false, "127.0.0.1.nip.io:8421": false, "0.0.0.0:8421": false, "": false,
	} {
		if got := config.IsLoopbackHost(h); got != want {
			t.Errorf("%q: got %v", h, got)
		}
	}
}

func TestRewriteLocation(t *testing.T) {
	up, _ := url.Parse("https://api.example.com/v1")
	ob := &outbound{upstream: up, prefix: "/wh", local: "http://127.0.0.1:8421"}
	for in, want := range map[string]string{
		"https://api.example.com/v1/tables?a=1": "http://127.0.0.1:8421/wh/tables?a=1",
		"https://api.example.com:443/v1/":       "http://127.0.0.1:8421/wh/",
		"https://api.example.com/v2/x":          "https://api.example.com/v2/x",
		"https://evil.example.com/v1/x":         "https://evil.example.com/v1/x",
		"http://api.example.com/v1/x":           "http://api.example.com/v1/x",
		"/relative":                             "/relative",
	} {
		if got := rewriteLoc(in, ob); got != want {
			t.Errorf("%s: got %s want %s", in, got, want)
		}
	}
}

func TestCALeaf(t *testing.T) {
	ca, err := LoadOrCreateCA(testenv.TempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ca.Leaf("api.example.com")
	if err != nil || l.Leaf.DNSNames[0] != "api.example.com" {
		t.Fatalf("leaf: %v", err)
	}
	if err := l.Leaf.CheckSignatureFrom(ca.cert); err != nil {
		t.Fatal(err)
	}
	l2, _ := ca.Leaf("api.example.com")
	if l2 != l {
		t.Fatal("leaf not cached")
	}
	ca2, err := LoadOrCreateCA(ca.Dir)
	if err != nil || !ca2.cert.Equal(ca.cert) {
		t.Fatal("CA not reloaded from disk")
	}
}
