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

// mine is a user's file with a profile of its own.
const mine = "profiles:\n  mine:\n    issuer: https://sso.example.com/realms/mine\nroutes:\n  - name: notes\n    upstream: https://notes.example.com\n    profile: mine\n"

// ignored loads a user's file with mine under a bad system file: it must
// load, serve the user's own profile, and say why the system file is
// ignored.
func ignored(t *testing.T, user string) (*Config, string) {
	t.Helper()
	c, err := Load(userFile(t, user))
	if err != nil {
		t.Fatalf("the user's own config failed with the system file: %v", err)
	}
	if _, ok := c.Profile("mine"); !ok || len(c.Profiles) != 1 || c.SystemPath() != "" {
		t.Fatalf("profiles %v (system %q), want the user's alone", c.ProfileNames(), c.SystemPath())
	}
	if c.SystemError() == nil {
		t.Fatal("no word of the ignored system file")
	}
	return c, c.SystemError().Error()
}

// A system file another user owns or can change is ignored, with the fix
// named; the user's own profiles keep serving.
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
		{"a directory above writable by others", func(p string) error { return os.Chmod(filepath.Dir(filepath.Dir(p)), 0o777) }, "has mode drwxrwxrwx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sys := systemFile(t, systemYAML)
			if err := tc.setup(sys); err != nil {
				t.Fatal(err)
			}
			_, msg := ignored(t, mine)
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "system-wide config") || !strings.Contains(msg, "ignores it") {
				t.Fatalf("got %s, want %q", msg, tc.want)
			}
		})
	}
}

func TestSystemFileInvalidNamesItself(t *testing.T) {
	requireRoot(t)
	sys := systemFile(t, "profiles:\n  default:\n    issuer: not-a-url\n")
	if _, msg := ignored(t, mine); !strings.HasPrefix(msg, sys+":3:") {
		t.Fatalf("got %s", msg)
	}
}

func TestSystemAndUserConflict(t *testing.T) {
	requireRoot(t)
	systemFile(t, "profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: a\n    upstream: https://api.example.com\n    intercept: true\n")
	c, msg := ignored(t, mine+"  - name: b\n    upstream: https://api.example.com/v2\n    intercept: true\n    profile: mine\n")
	if !strings.Contains(msg, "together with the system-wide config") || len(c.Routes) != 2 {
		t.Fatalf("got %s, routes %v", msg, c.Routes)
	}
}

// The files are merged before the profiles routes name are checked: a
// system route may name a profile only the user's file defines. Where no
// file defines it, that route is left out, with its file:line, and the
// rest serves; a user route naming no profile is the user's own error.
func TestSystemRouteNamesAUserProfile(t *testing.T) {
	requireRoot(t)
	sys := systemFile(t, "routes:\n  - name: warehouse\n    upstream: https://warehouse.example.com\n    profile: mine\n")
	c, err := Load(userFile(t, mine))
	if err != nil || c.SystemError() != nil {
		t.Fatalf("a system route naming the user's profile: %v, %v", err, c.SystemError())
	}
	if len(c.Routes) != 2 || c.RouteSource("warehouse") != sys || c.Routes[0].ProfileName() != "mine" {
		t.Fatalf("routes %v from %s", c.Routes, c.RouteSource("warehouse"))
	}

	// No file defines "analytics": that route is left out with its line;
	// the rest of the system file serves.
	sys = systemFile(t, "routes:\n  - name: warehouse\n    upstream: https://warehouse.example.com\n    profile: analytics\n"+
		"  - name: ledger\n    upstream: https://ledger.example.com\n    profile: mine\n")
	c, err = Load(userFile(t, mine))
	if err != nil || c.SystemError() != nil || len(c.LeftOut()) != 1 {
		t.Fatalf("a system route naming no profile: %v, %v, left out %v", err, c.SystemError(), c.LeftOut())
	}
	if msg := c.LeftOut()[0].Error(); !strings.HasPrefix(msg, sys+":4: routes[0].profile: no profile \"analytics\"") {
		t.Fatalf("left out: %s", msg)
	}
	if len(c.Routes) != 2 || c.RouteSource("ledger") != sys || c.RouteSource("notes") != c.Path() {
		t.Fatalf("routes %v", c.Routes)
	}

	up := userFile(t, "routes:\n  - name: mine\n    upstream: https://x.example.com\n    profile: nobody\n")
	if _, err := Load(up); err == nil || !strings.HasPrefix(err.Error(), up+":4: routes[0].profile: no profile \"nobody\"") {
		t.Fatalf("a user route naming no profile: %v", err)
	}
}

// The system file's top-level store is the default of every profile that
// doesn't name one, the user's own included; the user's file may override
// it, per profile or for all.
func TestSystemStoreDefault(t *testing.T) {
	requireRoot(t)
	systemFile(t, "store: file\nprofiles:\n  default:\n    issuer: https://sso.example.com/realms/a\n")
	for _, tc := range []struct{ user, profile, want string }{
		{"", "default", StoreFile},
		{mine, "mine", StoreFile},
		{"profiles:\n  mine:\n    issuer: https://x/realms/m\n    store: keychain\n", "mine", StoreKeychain},
		{"store: keychain\n" + mine, "default", StoreKeychain},
	} {
		c, err := Load(userFile(t, tc.user))
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := c.Profile(tc.profile); p.Store != tc.want {
			t.Errorf("user file %q: profile %s keeps tokens in %q, want %q", tc.user, tc.profile, p.Store, tc.want)
		}
	}
	// A profile a login adds keeps the store it was given: the token stays
	// findable if the system file is later ignored.
	up := userFile(t, "# mine\n")
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
	if data, _ := os.ReadFile(up); !strings.Contains(string(data), "store: file") {
		t.Fatalf("the added profile does not keep the store it was given:\n%s", data)
	}
	if _, err := Parse("c.yaml", []byte("store: vault\n")); err == nil || !strings.Contains(err.Error(), "c.yaml:1: store: unknown store") {
		t.Fatalf("an unknown store: %v", err)
	}
}

// A user route naming a profile only the system file defines can't serve
// while that file is ignored: the error says both.
func TestUserRouteOnAnIgnoredSystemProfile(t *testing.T) {
	requireRoot(t)
	sys := systemFile(t, systemYAML)
	os.Chmod(sys, 0o666)
	up := userFile(t, "routes:\n  - name: books\n    upstream: https://books.example.com\n    profile: finance\n")
	_, err := Load(up)
	if err == nil || !strings.HasPrefix(err.Error(), up+":4: routes[0].profile: no profile \"finance\"") || !strings.Contains(err.Error(), "the system-wide config is ignored") || !strings.Contains(err.Error(), "chmod go-w "+sys) {
		t.Fatalf("got %v", err)
	}
}
