package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

func TestParseErrorsNameLineAndField(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"unknown store", "profiles:\n  a:\n    issuer: https://x/realms/a\n    store: vault\n", "c.yaml:4: profiles.a.store: unknown store"},
		{"missing issuer", "profiles:\n  a:\n    client_id: x\n", "c.yaml:2: profiles.a.issuer: missing"},
		{"bad issuer", "profiles:\n  a:\n    issuer: not a url\n", "c.yaml:3: profiles.a.issuer:"},
		{"http issuer", "profiles:\n  a:\n    issuer: http://sso.example.com/realms/a\n", "plain http is only allowed for a loopback"},
		{"unknown field", "profiles:\n  a:\n    issuer: https://x/realms/a\n    scope: [x]\n", "c.yaml:4: field scope not found"},
		{"syntax", "profiles:\n  a: [\n", "c.yaml:"},
		{"bad profile name", "profiles:\n  'a b':\n    issuer: https://x/realms/a\n", "profiles.a b"},
		{"route without profile", "routes:\n  - name: w\n    upstream: https://api.example.com\n", `c.yaml:2: routes[0].profile: no profile "default"`},
		{"route bad upstream", "profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: w\n    upstream: api.example.com\n", "c.yaml:6: routes[0].upstream"},
		{"non-loopback proxy", "proxy:\n  listen: 0.0.0.0:8421\n", "c.yaml:2: proxy.listen: \"0.0.0.0:8421\" is not a loopback address"},
		{"non-loopback route port", "profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: w\n    upstream: https://a\n    listen: 192.0.2.1:9000\n", "routes[0].listen"},
		{"cleartext upstream", "profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: w\n    upstream: http://203.0.113.10/api\n", "c.yaml:6: routes[0].upstream: plain http sends your token over the network in the clear"},
		{"dot segments in upstream", "profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: w\n    upstream: https://a/x/../y\n", "routes[0].upstream: must not contain . or .."},
		{"two intercepts, one origin", "profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: a\n    upstream: https://api.example.com/v1\n    intercept: true\n  - name: b\n    upstream: https://API.example.com:443/v2\n    intercept: true\n", `c.yaml:10: routes[1].intercept: routes "a" and "b" both intercept https://api.example.com:443`},
		{"missing ca_file", "proxy:\n  ca_file: /nonexistent/ca.pem\n", "c.yaml:2: proxy.ca_file: can not read /nonexistent/ca.pem"},
		{"route on the main address", "profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: w\n    upstream: https://a\n    listen: 127.0.0.1:8421\n", "routes[0].listen: 127.0.0.1:8421 is the proxy's main address"},
		{"two routes, one port", "profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: a\n    upstream: https://a\n    listen: 127.0.0.1:9001\n  - name: b\n    upstream: https://b\n    listen: 127.0.0.1:9001\n", `routes[1].listen: route "a" listens on 127.0.0.1:9001 already`},
		{"duplicate route", "profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: w\n    upstream: https://a\n  - name: w\n    upstream: https://b\n", "duplicate route"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *config.Error: %T", err)
			}
		})
	}
}

func TestUnsafeListenNeedsTheFlag(t *testing.T) {
	if _, err := Parse("c.yaml", []byte("proxy:\n  listen: 0.0.0.0:8421\n  unsafe_listen_non_loopback: true\n")); err != nil {
		t.Fatalf("explicit unsafe flag refused: %v", err)
	}
}

func TestParseValidAndDefaults(t *testing.T) {
	c, err := Parse("c.yaml", []byte("profiles:\n  work:\n    issuer: https://sso.example.com/realms/w\n    scopes: [warehouse]\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.Profile("work")
	if !ok || p.ClientID != DefaultClientID || p.Store != StoreKeychain || p.Scopes[0] != "warehouse" {
		t.Fatalf("profile: %+v", p)
	}
	if _, err := Parse("c.yaml", nil); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

func TestSetProfileKeepsComments(t *testing.T) {
	dir := testenv.TempDir(t)
	path := filepath.Join(dir, "config.yaml")
	orig := "# my settings\nprofiles:\n  # the work realm\n  work:\n    issuer: https://sso.example.com/realms/w\n"
	os.WriteFile(path, []byte(orig), 0o600)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetProfile("home", Profile{Issuer: "https://sso.example.com/realms/h", ClientID: DefaultClientID, Store: StoreKeychain}); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{"# my settings", "# the work realm", "realms/w", "home:", "realms/h"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("saved file lacks %q:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "client_id") {
		t.Errorf("defaults were written out:\n%s", data)
	}
	c2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Profiles) != 2 {
		t.Fatalf("profiles after reload: %v", c2.ProfileNames())
	}
}

func TestLoadMissingCreatesFresh(t *testing.T) {
	path := filepath.Join(testenv.TempDir(t), "sub", "config.yaml")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetProfile("default", Profile{Issuer: "https://sso.example.com/realms/a"})
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	checkWrittenPrivate(t, path)
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("profiles:\n  a:\n    issuer: https://x/realms/a\n"))
	f.Add([]byte("routes:\n  - name: w\n    upstream: https://a\n"))
	f.Add([]byte("profiles: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, name := range c.ProfileNames() {
			if _, ok := c.Profile(name); !ok {
				t.Fatal("listed profile missing")
			}
		}
	})
}

func TestCleartextUpstreams(t *testing.T) {
	ok := []string{"http://127.0.0.1:9101/api", "http://localhost:8080", "http://[::1]:80/x"}
	for _, u := range ok {
		if _, err := ParseWhere("c.yaml", []byte("profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: w\n    upstream: "+u+"\n"), true); err != nil {
			t.Errorf("loopback %s refused: %v", u, err)
		}
	}
	if _, err := ParseWhere("c.yaml", []byte("profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: w\n    upstream: http://203.0.113.10/api\n    unsafe_cleartext_upstream: true\n"), true); err != nil {
		t.Errorf("the explicit opt-out was refused: %v", err)
	}
	// Two routes to one origin are fine while at most one intercepts.
	if _, err := ParseWhere("c.yaml", []byte("profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: a\n    upstream: https://api.example.com/v1\n    intercept: true\n  - name: b\n    upstream: https://api.example.com/v2\n"), true); err != nil {
		t.Errorf("two reverse routes to one origin refused: %v", err)
	}
}

// Where socket owners can not be seen (macOS), plain http to loopback can
// not be checked: a route or an issuer needs its unsafe_ opt-in, and the
// error says which.
func TestCleartextLoopbackWithoutOwners(t *testing.T) {
	const https = "profiles:\n  default:\n    issuer: https://x/realms/a\n"
	for _, tc := range []struct{ cfg, refused string }{
		{https + "routes:\n  - name: w\n    upstream: http://127.0.0.1:9101/api\n", "unsafe_cleartext_upstream"},
		{"profiles:\n  default:\n    issuer: http://127.0.0.1:8080/realms/a\n", "unsafe_cleartext_issuer"},
		{https + "routes:\n  - name: w\n    upstream: http://127.0.0.1:9101/api\n    unsafe_cleartext_upstream: true\n", ""},
		{"profiles:\n  default:\n    issuer: http://127.0.0.1:8080/realms/a\n    unsafe_cleartext_issuer: true\n", ""},
		{https + "routes:\n  - name: w\n    upstream: https://127.0.0.1:9101/api\n", ""},
	} {
		c, err := ParseWhere("c.yaml", []byte(tc.cfg), false)
		if tc.refused == "" && err != nil || tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)) {
			t.Errorf("%s: %v", tc.cfg, err)
		}
		if c != nil && c.OwnersVisible() {
			t.Errorf("%s: checked without owners, the config says they were visible", tc.cfg)
		}
	}
	if _, err := ParseWhere("c.yaml", []byte("profiles:\n  default:\n    issuer: http://127.0.0.1:8080/realms/a\n"), true); err != nil {
		t.Errorf("a loopback issuer where owners are checked: %v", err)
	}
}

func TestLoadRefusesEmptyFile(t *testing.T) {
	path := filepath.Join(testenv.TempDir(t), "config.yaml")
	for _, data := range []string{"", "\n  \n"} {
		os.WriteFile(path, []byte(data), 0o600)
		_, err := Load(path)
		if !errors.Is(err, ErrEmpty) {
			t.Fatalf("%q: got %v, want ErrEmpty", data, err)
		}
	}
}
