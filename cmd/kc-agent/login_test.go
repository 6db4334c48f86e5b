//go:build unix

package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

func TestLoginBrowserPKCE(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	wait := browse(keycloak.NewFormBrowser("alice", "alice-pw"))
	code, stdout, stderr := e.run("login", kc.Issuer(keycloak.RealmTest), "--profile", e.profile, "--timeout", "60s")
	if err := wait(); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if code != 0 {
		t.Fatalf("login exited %d: %s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("login printed to stdout (only data belongs there): %q", stdout)
	}
	for _, want := range []string{"logged in as alice", `realm "kcagent-test"`, "Secret Service keyring", "no fixed end"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	rec, err := e.stored()
	if err != nil {
		t.Fatal(err)
	}
	if rec.Username != "alice" || rec.Issuer != kc.Issuer(keycloak.RealmTest) || rec.ClientID != "kc-agent" {
		t.Fatalf("stored record: %v", rec)
	}
	// The stored token is a live offline token.
	status, oauthErr, err := kc.DirectRefresh(context.Background(), keycloak.RealmTest, rec.RefreshToken)
	if err != nil || status != 200 {
		t.Fatalf("refresh with the stored token: HTTP %d %s %v", status, oauthErr, err)
	}
	p, ok := e.loadProfile()
	if !ok || p.Issuer != kc.Issuer(keycloak.RealmTest) || p.Store != "keychain" {
		t.Fatalf("profile not written: %+v", p)
	}
	fi, err := os.Stat(os.Getenv("KC_AGENT_CONFIG"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode: %v %v", fi.Mode().Perm(), err)
	}
}

func TestLoginDeviceFlow(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	var visited string
	b := keycloak.NewFormBrowser("carol", "carol-pw")
	done := make(chan error, 1)
	openURLHook = func(u string) error {
		visited = u
		go func() {
			res, err := b.Visit(context.Background(), u)
			if err == nil && !strings.Contains(res.URL, "/device/status") {
				err = errors.New("device approval ended at " + res.URL)
			}
			done <- err
		}()
		return nil
	}
	code, _, stderr := e.run("login", kc.Issuer(keycloak.RealmTest), "--profile", e.profile, "--device", "--timeout", "60s")
	if err := <-done; err != nil {
		t.Fatalf("device approval: %v", err)
	}
	if code != 0 {
		t.Fatalf("device login exited %d: %s", code, stderr)
	}
	// The opener gets a one-time launcher link (its argv is public); the
	// approval above went through it to verification_uri_complete.
	if !strings.HasPrefix(visited, "http://127.0.0.1:") || strings.Contains(visited, "user_code") {
		t.Errorf("opened %q, want a launcher link to verification_uri_complete", visited)
	}
	for _, want := range []string{"enter the code", "scan this code", "▀", "logged in as carol"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	rec, err := e.stored()
	if err != nil || rec.Username != "carol" {
		t.Fatalf("stored: %v %v", rec, err)
	}
}

// Chromium's real login page, typed into like a person would.
func TestLoginHeadlessChromium(t *testing.T) {
	testenv.SecretService(t)
	chromium := testenv.Chromium(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	done := make(chan error, 1)
	openURLHook = func(u string) error {
		go func() { done <- chromium.SignIn(u, "dave", "dave-pw") }()
		return nil
	}
	code, _, stderr := e.run("login", kc.Issuer(keycloak.RealmTest), "--profile", e.profile, "--timeout", "90s")
	if err := <-done; err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if code != 0 {
		t.Fatalf("login exited %d: %s", code, stderr)
	}
	if rec, err := e.stored(); err != nil || rec.Username != "dave" {
		t.Fatalf("stored: %v %v", rec, err)
	}
}

func TestLoginFailuresStoreNothing(t *testing.T) {
	testenv.SecretService(t)
	cases := []struct {
		name     string
		realm    string
		browser  *keycloak.FormBrowser
		args     []string
		wantErr  string
		wantCode int
	}{
		{"wrong password", keycloak.RealmTest, keycloak.NewFormBrowser("alice", "wrong"), []string{"--timeout", "4s"}, "timed out waiting for the browser login", 1},
		{"consent denied", keycloak.RealmTest, &keycloak.FormBrowser{}, []string{"--device", "--timeout", "60s"}, "access was denied", 1},
		{"expired device code", keycloak.RealmShort, nil, []string{"--device", "--timeout", "60s"}, "device code expired", 1},
		{"no offline_access role", keycloak.RealmTest, keycloak.NewFormBrowser("bob", "bob-pw"), nil, "offline tokens are not allowed for this user", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCLIEnv(t)
			kc := e.keycloak()
			b := tc.browser
			if b != nil && b.User == "" {
				b = keycloak.NewFormBrowser("alice", "alice-pw")
				b.Deny = true
			}
			done := make(chan struct{})
			openURLHook = func(u string) error {
				go func() {
					defer close(done)
					if b != nil {
						b.Visit(context.Background(), u)
					}
				}()
				return nil
			}
			start := time.Now()
			args := append([]string{"login", kc.Issuer(tc.realm), "--profile", e.profile}, tc.args...)
			code, _, stderr := e.run(args...)
			<-done
			if code != tc.wantCode || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, tc.wantCode, tc.wantErr)
			}
			if !strings.Contains(stderr, "kc-agent: hint:") {
				t.Errorf("no hint in:\n%s", stderr)
			}
			if tc.name == "wrong password" && !strings.Contains(stderr, "waiting for the browser login (") {
				t.Errorf("no waiting line with the time left in:\n%s", stderr)
			}
			if _, err := e.stored(); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("something was stored after a failed login (%v)", err)
			}
			if time.Since(start) > 50*time.Second {
				t.Errorf("failure took %s", time.Since(start))
			}
		})
	}
}

func TestLogoutEndsSessionAtKeycloak(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	e.login(keycloak.RealmTest, "alice", "alice-pw")
	rec, _ := e.stored()
	code, _, stderr := e.run("logout", "--profile", e.profile)
	if code != 0 || !strings.Contains(stderr, "session ended at the server") {
		t.Fatalf("logout exited %d: %s", code, stderr)
	}
	if _, err := e.stored(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("keychain item survived logout: %v", err)
	}
	status, oauthErr, err := kc.DirectRefresh(context.Background(), keycloak.RealmTest, rec.RefreshToken)
	if err != nil || status != http.StatusBadRequest || oauthErr != "invalid_grant" {
		t.Fatalf("old offline token still works after logout: HTTP %d %q %v", status, oauthErr, err)
	}
	// A second logout is harmless.
	if code, _, stderr := e.run("logout", "--profile", e.profile); code != 0 || !strings.Contains(stderr, "not logged in") {
		t.Fatalf("second logout: %d %s", code, stderr)
	}
}

func TestLogoutWithKeycloakUnreachable(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.login(keycloak.RealmTest, "alice", "alice-pw")
	// Point the stored record at a port nobody listens on.
	rec, _ := e.stored()
	rec.Issuer = "http://127.0.0.1:1/realms/gone"
	p, _ := e.loadProfile()
	st, _ := store.ForProfile(p, nil)
	if err := st.Put(context.Background(), e.profile, rec); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := e.run("logout", "--profile", e.profile)
	if code != 0 || !strings.Contains(stderr, "warning: could not end the session") {
		t.Fatalf("logout exited %d: %s", code, stderr)
	}
	if _, err := e.stored(); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("token not deleted locally")
	}
}

func TestLoginFileStore(t *testing.T) {
	e := newCLIEnv(t)
	// No keychain at all in this process.
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	e.login(keycloak.RealmTest, "alice", "alice-pw", "--store", "file")
	p, _ := e.loadProfile()
	if p.Store != "file" {
		t.Fatalf("profile store %q", p.Store)
	}
	code, _, stderr := e.run("logout", "--profile", e.profile)
	if code != 0 || !strings.Contains(stderr, "plain file") {
		t.Fatalf("logout: %d %s", code, stderr)
	}
}

// Ctrl-C (the command's context ends) stops a login that is waiting for the
// browser: a clear message, nothing stored.
func TestLoginInterrupted(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	openURLHook = func(string) error { return nil } // a browser nobody uses
	var out, errb strings.Builder
	root := newRootCmd(&IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb})
	root.SetArgs([]string{"login", kc.Issuer(keycloak.RealmTest), "--profile", e.profile})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	err := root.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "login cancelled") {
		t.Fatalf("got %v", err)
	}
	if _, err := e.stored(); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("an interrupted login stored something")
	}
}
