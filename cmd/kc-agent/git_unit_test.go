package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/routepath"
	"github.com/kc-agent/kc-agent/ipc"
)

func TestReadGitRequest(t *testing.T) {
	in := "protocol=https\r\nhost=Git.Example.com:443\npath=team/repo.git\nusername=alice\n" +
		"capability[]=authtype\ncapability[]=state\nwwwauth[]=Basic realm=\"x\"\nnonsense\nfuture=1\n\nprotocol=ignored\n"
	req, err := readGitRequest(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if req.Protocol != "https" || req.Host != "Git.Example.com:443" || req.Path != "team/repo.git" || req.Username != "alice" {
		t.Fatalf("got %+v", req)
	}
	if !req.Capabilities["authtype"] || !req.Capabilities["state"] {
		t.Fatalf("capabilities %v", req.Capabilities)
	}
	// url= fills in what git did not send separately.
	req, err = readGitRequest(strings.NewReader("url=https://bob@git.example.com/team/r.git\n"))
	if err != nil || req.Protocol != "https" || req.Host != "git.example.com" || req.Path != "team/r.git" || req.Username != "bob" {
		t.Fatalf("url=: %+v %v", req, err)
	}
	// EOF without a blank line ends the request too; oversized input fails.
	if _, err := readGitRequest(strings.NewReader("host=" + strings.Repeat("a", gitInputMax))); err == nil {
		t.Fatal("an oversized line was accepted")
	}
}

func FuzzReadGitRequest(f *testing.F) {
	f.Add("protocol=https\nhost=git.example.com\npath=a/b\ncapability[]=authtype\n\n")
	f.Add("url=https://u@h:1/p\n")
	f.Fuzz(func(t *testing.T, in string) {
		req, err := readGitRequest(strings.NewReader(in))
		if err != nil {
			return
		}
		routes := []config.Route{{Name: "r", Upstream: "https://git.example.com/team"}}
		if r, ok := matchRoute(routes, req); ok {
			// Whatever git sent, a match is under the route.
			if !routepath.InsideRaw("/"+strings.TrimPrefix(req.Path, "/"), "/team") ||
				config.OriginKey(&url.URL{Scheme: "https", Host: req.Host}) != "https://git.example.com:443" || r.Name != "r" {
				t.Fatalf("matched %+v", req)
			}
		}
	})
}

func TestMatchRoute(t *testing.T) {
	routes := []config.Route{
		{Name: "host", Upstream: "https://git.example.com"},
		{Name: "team", Upstream: "https://git.example.com/team/"},
		{Name: "deep", Upstream: "https://git.example.com/team/special"},
		{Name: "port", Upstream: "https://git.example.com:8443/"},
		{Name: "local", Upstream: "http://127.0.0.1:3000/git"},
		{Name: "plain", Upstream: "http://git.plain.example.com"},
		{Name: "unsafe", Upstream: "http://git.unsafe.example.com", UnsafeCleartextUpstream: true},
		{Name: "lh", Upstream: "http://localhost:3001/"},
	}
	for _, tc := range []struct {
		protocol, host, path string
		want                 string // "" for no answer
	}{
		{"https", "git.example.com", "other/repo.git", "host"},
		{"https", "git.example.com", "", "host"},
		{"https", "GIT.example.com:443", "team/repo.git", "team"},
		{"https", "git.example.com", "team", "team"},
		{"https", "git.example.com", "/team/special/x.git", "deep"},
		{"https", "git.example.com", "teammate/x.git", "host"},
		{"https", "git.example.com", "team/../x.git", ""},
		{"https", "git.example.com", "team/./x.git", ""},
		// The proxy's containment rule (internal/routepath), not a copy.
		{"https", "git.example.com", "team/..;/x.git", ""},
		{"https", "git.example.com", "team/%2e%2e/x.git", ""},
		{"https", "git.example.com", "team/%252e%252e/x.git", ""},
		{"https", "git.example.com", "team/..%2fx.git", ""},
		{"https", "git.example.com", "team\\..\\x.git", ""},
		// The one loopback rule: any case.
		{"http", "LOCALHOST:3001", "a.git", "lh"},
		{"http", "[::ffff:127.0.0.1]:3000", "git/a.git", ""},
		{"https", "git.example.com:8443", "a.git", "port"},
		{"https", "git.example.com:9999", "a.git", ""},
		{"https", "git.example.com.evil.com", "a.git", ""},
		{"http", "git.example.com", "a.git", ""},
		{"http", "127.0.0.1:3000", "git/a.git", "local"},
		{"http", "127.0.0.1:3000", "gitx/a.git", ""},
		{"http", "git.plain.example.com", "a.git", ""},
		{"http", "git.unsafe.example.com", "a.git", "unsafe"},
		{"https", "git.unsafe.example.com", "a.git", ""},
		{"ssh", "git.example.com", "a.git", ""},
		{"https", "", "a.git", ""},
	} {
		r, ok := matchRoute(routes, gitRequest{Protocol: tc.protocol, Host: tc.host, Path: tc.path})
		got := ""
		if ok {
			got = r.Name
		}
		if got != tc.want {
			t.Errorf("%s://%s/%s: route %q, want %q", tc.protocol, tc.host, tc.path, got, tc.want)
		}
	}
	// Without useHttpPath git sends no path: only a route without a path
	// prefix can answer.
	if _, ok := matchRoute(routes[1:2], gitRequest{Protocol: "https", Host: "git.example.com"}); ok {
		t.Error("a path-prefixed route answered a request without a path")
	}
}

func TestGitAnswer(t *testing.T) {
	exp := time.Unix(1900000000, 0)
	tok := &ipc.TokenResponse{AccessToken: "tok-value", TokenType: "Bearer", ExpiresAt: exp}
	for name, tc := range map[string]struct {
		req   gitRequest
		route config.Route
		want  string
	}{
		"authtype": {gitRequest{Capabilities: map[string]bool{"authtype": true}, Username: "alice"}, config.Route{GitUsername: "x"},
			"capability[]=authtype\nauthtype=Bearer\ncredential=tok-value\nephemeral=1\n"},
		"default user": {gitRequest{Capabilities: map[string]bool{}}, config.Route{},
			"username=oauth2\npassword=tok-value\npassword_expiry_utc=1900000000\n"},
		"user from url": {gitRequest{Username: "alice"}, config.Route{},
			"username=alice\npassword=tok-value\npassword_expiry_utc=1900000000\n"},
		"route's user wins": {gitRequest{Username: "alice"}, config.Route{GitUsername: "x-token-auth"},
			"username=x-token-auth\npassword=tok-value\npassword_expiry_utc=1900000000\n"},
	} {
		out, err := gitAnswer(tc.req, tc.route, tok)
		if err != nil || string(out) != tc.want {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
	if _, err := gitAnswer(gitRequest{}, config.Route{Name: "r", GitUsername: "a\npassword=evil"}, tok); err == nil {
		t.Error("a git_username with a line break was passed to git")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"kc-agent":                 "kc-agent",
		"/usr/bin/kc-agent":        "/usr/bin/kc-agent",
		"":                         "''",
		"!kc-agent git-credential": "'!kc-agent git-credential'",
		"it's":                     `'it'\''s'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// Input cut at the size limit is refused, never parsed: a host name cut
// short could match a route.
func TestReadGitRequestRefusesOverlongInput(t *testing.T) {
	filler := "x=" + strings.Repeat("a", gitInputMax-len("x=\n")-len("host=git.example.com")) + "\n"
	in := filler + "host=git.example.com.evil.net\n\n"
	if _, err := readGitRequest(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("an overlong request was parsed: %v", err)
	}
	if _, err := readGitRequest(strings.NewReader("protocol=https\nhost=git.example.com\n\n")); err != nil {
		t.Fatal(err)
	}
}
