//go:build unix

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const systemYAML = `profiles:
  default:
    issuer: https://sso.example.com/realms/analytics
    client_id: kc-agent
  finance:
    issuer: https://sso.example.com/realms/finance
routes:
  - name: warehouse
    upstream: https://warehouse.example.com/v1
  - name: ledger
    upstream: https://ledger.example.com
    profile: finance
proxy:
  listen: 127.0.0.1:8421
`

// systemFile writes a system-wide config (root-owned when the test runs as
// root, like the real one) and points KC_AGENT_SYSTEM_CONFIG at it.
func systemFile(t *testing.T, data string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "etc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KC_AGENT_SYSTEM_CONFIG", path)
	return path
}

func userFile(t *testing.T, data string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "user")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if data != "" {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the system-wide file must belong to root: run as root")
	}
}

func TestSystemMerge(t *testing.T) {
	requireRoot(t)
	sys := systemFile(t, systemYAML)
	cases := []struct {
		name     string
		user     string
		profiles map[string]string // name -> issuer realm suffix @ source ("sys"/"user")
		routes   map[string]string // name -> upstream host @ source
		listen   string
	}{
		{name: "no user file",
			profiles: map[string]string{"default": "analytics@sys", "finance": "finance@sys"},
			routes:   map[string]string{"warehouse": "warehouse.example.com@sys", "ledger": "ledger.example.com@sys"},
			listen:   "127.0.0.1:8421"},
		{name: "user overrides a profile and a route, adds its own",
			user: "profiles:\n  default:\n    issuer: https://sso.example.com/realms/mine\n  lab:\n    issuer: https://lab.example.com/realms/lab\n" +
				"routes:\n  - name: warehouse\n    upstream: https://wh-test.example.com\n  - name: notebook\n    upstream: https://nb.example.com\n    profile: lab\n" +
				"proxy:\n  listen: 127.0.0.1:9000\n",
			profiles: map[string]string{"default": "mine@user", "finance": "finance@sys", "lab": "lab@user"},
			routes:   map[string]string{"warehouse": "wh-test.example.com@user", "ledger": "ledger.example.com@sys", "notebook": "nb.example.com@user"},
			listen:   "127.0.0.1:9000"},
		{name: "a user route names a system profile",
			user:     "routes:\n  - name: books\n    upstream: https://books.example.com\n    profile: finance\n",
			profiles: map[string]string{"default": "analytics@sys", "finance": "finance@sys"},
			routes:   map[string]string{"warehouse": "warehouse.example.com@sys", "ledger": "ledger.example.com@sys", "books": "books.example.com@user"},
			listen:   "127.0.0.1:8421"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := userFile(t, tc.user)
			c, err := Load(up)
			if err != nil {
				t.Fatal(err)
			}
			src := map[string]string{sys: "sys", up: "user"}
			if len(c.Profiles) != len(tc.profiles) {
				t.Errorf("profiles %v, want %v", c.ProfileNames(), tc.profiles)
			}
			for n, want := range tc.profiles {
				p := c.Profiles[n]
				got := p.Issuer[strings.LastIndex(p.Issuer, "/")+1:] + "@" + src[c.ProfileSource(n)]
				if got != want {
					t.Errorf("profile %s: %s, want %s", n, got, want)
				}
			}
			if len(c.Routes) != len(tc.routes) {
				t.Errorf("routes %v, want %v", c.Routes, tc.routes)
			}
			for _, r := range c.Routes {
				host := strings.SplitN(strings.TrimPrefix(r.Upstream, "https://"), "/", 2)[0]
				if got := host + "@" + src[c.RouteSource(r.Name)]; got != tc.routes[r.Name] {
					t.Errorf("route %s: %s, want %s", r.Name, got, tc.routes[r.Name])
				}
			}
			if c.ProxyListen() != tc.listen {
				t.Errorf("listen %s, want %s", c.ProxyListen(), tc.listen)
			}
			if c.SystemPath() != sys {
				t.Errorf("SystemPath %q", c.SystemPath())
			}
		})
	}
}

// login saves into the user's file; the system file is never written, and
// what it defines is not copied into the user's file.
func TestSystemMergeSavesOnlyTheUserFile(t *testing.T) {
	requireRoot(t)
	sys := systemFile(t, systemYAML)
	up := userFile(t, "# mine\n")
	before, _ := os.ReadFile(sys)
	c, err := Load(up)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetProfile("lab", Profile{Issuer: "https://lab.example.com/realms/lab"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(sys)
	if string(before) != string(after) {
		t.Fatal("the system file changed")
	}
	data, _ := os.ReadFile(up)
	if !strings.Contains(string(data), "lab.example.com") || strings.Contains(string(data), "analytics") || strings.Contains(string(data), "warehouse") {
		t.Fatalf("user file:\n%s", data)
	}
	if c.ProfileSource("lab") != up {
		t.Errorf("lab from %s", c.ProfileSource("lab"))
	}
	c2, err := Load(up)
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Profiles) != 3 || len(c2.Routes) != 2 {
		t.Fatalf("reloaded: %v %v", c2.ProfileNames(), c2.Routes)
	}
}

func TestSystemFileMustBeRoots(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name  string
		setup func(path string) error
		want  string
	}{
		{"owned by another user", func(p string) error { return os.Chown(p, 65534, 65534) }, "belongs to uid 65534, not to root"},
		{"directory owned by another user", func(p string) error { return os.Chown(filepath.Dir(p), 65534, 65534) }, "directory"},
		{"writable by others", func(p string) error { return os.Chmod(p, 0o666) }, "chmod go-w"},
		{"writable by group", func(p string) error { return os.Chmod(p, 0o664) }, "other users could rewrite it"},
		{"directory writable by others", func(p string) error { return os.Chmod(filepath.Dir(p), 0o777) }, "chmod go-w"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sys := systemFile(t, systemYAML)
			if err := tc.setup(sys); err != nil {
				t.Fatal(err)
			}
			_, err := Load(userFile(t, ""))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "system-wide config") {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSystemFileInvalidNamesItself(t *testing.T) {
	requireRoot(t)
	sys := systemFile(t, "profiles:\n  default:\n    issuer: not-a-url\n")
	_, err := Load(userFile(t, ""))
	if err == nil || !strings.HasPrefix(err.Error(), sys+":3:") {
		t.Fatalf("got %v", err)
	}
}

func TestSystemAndUserConflict(t *testing.T) {
	requireRoot(t)
	systemFile(t, "profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: a\n    upstream: https://api.example.com\n    intercept: true\n")
	_, err := Load(userFile(t, "routes:\n  - name: b\n    upstream: https://api.example.com/v2\n    intercept: true\n"))
	if err == nil || !strings.Contains(err.Error(), "together with the system-wide config") {
		t.Fatalf("got %v", err)
	}
}
