//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

// `kc-agent logout` while an agent runs goes through the agent (the one
// writer of the store): the agent ends the session and deletes the token.
func TestLogoutThroughAgent(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.configureProfile(keycloak.RealmTest)
	agent := e.startAgent()
	wait := browse(keycloak.NewFormBrowser("peggy", "peggy-pw"))
	if code, _, stderr := e.run("login", "--profile", e.profile, "--device", "--timeout", "60s"); code != 0 {
		t.Fatalf("login: %d %s", code, stderr)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	rec, err := e.stored()
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := e.run("logout", "--profile", e.profile)
	if code != 0 || !strings.Contains(stderr, "session ended at the server") {
		t.Fatalf("logout: %d %s", code, stderr)
	}
	if log := agent.log.String(); !strings.Contains(log, "logged out") || !strings.Contains(log, "login removed") || !strings.Contains(log, "profile="+e.profile) {
		t.Errorf("the agent did not do the logout:\n%s", log)
	}
	if _, err := e.stored(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("stored after logout: %v", err)
	}
	if status, oauthErr, _ := e.keycloak().DirectRefresh(context.Background(), keycloak.RealmTest, rec.RefreshToken); status != 400 || oauthErr != "invalid_grant" {
		t.Fatalf("the session lives on after logout: HTTP %d %s", status, oauthErr)
	}
	if code, _, stderr := e.run("token", "--profile", e.profile); code != exitLoginRequired {
		t.Fatalf("token after logout: %d %s", code, stderr)
	}
	// Through the socket API too: nothing left to end.
	out, err := agent.client.Logout(context.Background(), ipc.LogoutRequest{Profile: e.profile})
	if err != nil || out.LoggedIn {
		t.Fatalf("second logout: %+v %v", out, err)
	}
}

// unreachableStore is a keychain that can't be reached.
type unreachableStore struct{}

func (unreachableStore) err(op string) error {
	return &store.UnavailableError{Op: op, Err: errors.New("no Secret Service on this test host")}
}
func (s unreachableStore) Get(context.Context, string) (store.Record, error) {
	return store.Record{}, s.err("read")
}
func (s unreachableStore) Put(context.Context, string, store.Record) error { return s.err("write") }
func (s unreachableStore) Delete(context.Context, string) error            { return s.err("delete") }
func (unreachableStore) Describe() string                                  { return "unreachable" }
func (s unreachableStore) CheckWritable(context.Context) error             { return s.err("check") }

// countingIssuer stands in for Keycloak and counts what reaches it: a
// refused sign-in must not ask for anything (no device grant).
func countingIssuer(t *testing.T) (issuer string, hits *atomic.Int32) {
	hits = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/realms/nowhere", hits
}

// On a host without a keychain, an administrator's profile that keeps the
// keychain: get_token()'s answer is "log in" (login_required, saying why a
// login needs the store fixed first; not a keychain error), and
// login() / `kc-agent login` through the agent fail at once, before any
// device grant, saying the fix is the administrator's.
func TestSignInRefusedWhenStoreCanNotWrite(t *testing.T) {
	e := newCLIEnv(t)
	issuer, hits := countingIssuer(t)
	sys := systemConfig(t, fmt.Sprintf("profiles:\n  %s:\n    issuer: %s\n", e.profile, issuer))
	agent := e.startAgentWith(func(m *tokens.Manager) {
		m.StoreFor = func(config.Profile) (store.Store, error) { return unreachableStore{}, nil }
	})
	if _, code, stderr := e.tokenJSON(); code != exitLoginRequired || !strings.Contains(stderr, "is not logged in on this host") || !strings.Contains(stderr, "kc-agent login") {
		t.Errorf("token before any sign-in: exit %d: %s", code, stderr)
	}
	_, err := agent.client.StartLogin(context.Background(), ipc.LoginRequest{Profile: e.profile, Flow: ipc.FlowDevice})
	var ae *ipc.Error
	if !errors.As(err, &ae) || ae.Code != ipc.CodeConfig || ae.Status != 503 ||
		!strings.Contains(ae.Hint, "only your administrator") || !strings.Contains(ae.Hint, sys) || !strings.Contains(ae.Hint, "store: file") {
		t.Fatalf("POST /v1/login: %v (hint %q)", err, hintOf(ae))
	}
	code, _, stderr := e.run("login", "--profile", e.profile, "--device", "--timeout", "60s")
	if code != exitError || !strings.Contains(stderr, "not starting the sign-in") || !strings.Contains(stderr, sys) || strings.Contains(stderr, "enter the code") {
		t.Fatalf("login through the agent: exit %d: %s", code, stderr)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the issuer was asked %d times for a sign-in that could not be kept", n)
	}
	if strings.Contains(agent.log.String(), "sign-in started") {
		t.Error("the agent started a sign-in")
	}
}

// Without an agent, `kc-agent login` runs the same use case: with no
// keychain reachable and the user's own profile, it fails at once and
// names the user's store: line.
func TestSignInRefusedWithoutAgent(t *testing.T) {
	bin := buildBinary(t)
	e := newCLIEnv(t)
	issuer, hits := countingIssuer(t)
	path, _ := config.FilePath()
	os.MkdirAll(filepath.Dir(path), 0o700)
	os.WriteFile(path, []byte(fmt.Sprintf("profiles:\n  %s:\n    issuer: %s\n", e.profile, issuer)), 0o600)
	env := slices.DeleteFunc(os.Environ(), func(s string) bool { return strings.HasPrefix(s, "DBUS_SESSION_BUS_ADDRESS=") })
	env = append(env, "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(e.dir, "no-bus"))
	code, _, stderr := e.runBin(env, bin, "login", "--profile", e.profile, "--device", "--timeout", "30s")
	if code != exitError || !strings.Contains(stderr, "not starting the sign-in") ||
		!strings.Contains(stderr, "add `store: file` to profile \""+e.profile+"\" in "+path) || strings.Contains(stderr, "enter the code") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the issuer was asked %d times", n)
	}
}

func hintOf(e *ipc.Error) string {
	if e == nil {
		return ""
	}
	return e.Hint
}

// A sign-in that returns another Keycloak user than the stored login is
// refused (and its new session ended) unless the caller asked to switch
// users; the old login keeps serving. Status names who is signed in. The
// same, without an agent.
func TestSwitchUser(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	e.configureProfile(keycloak.RealmTest)
	agent := e.startAgent()
	loginAs := func(user string, extra ...string) (int, string) {
		t.Helper()
		wait := browse(keycloak.NewFormBrowser(user, user+"-pw"))
		code, _, stderr := e.run(append([]string{"login", "--profile", e.profile, "--device", "--timeout", "60s"}, extra...)...)
		if err := wait(); err != nil {
			t.Fatalf("approving as %s: %v", user, err)
		}
		return code, stderr
	}
	if code, stderr := loginAs("peggy"); code != 0 {
		t.Fatalf("first login: %s", stderr)
	}
	if _, out, _ := e.run("status"); !strings.Contains(out, "peggy") {
		t.Errorf("status does not say who is signed in:\n%s", out)
	}
	ctx := context.Background()
	before, err := kc.Admin().OfflineSessions(ctx, keycloak.RealmTest, "kurt")
	if err != nil {
		t.Fatal(err)
	}
	code, stderr := loginAs("kurt")
	if code != exitError || !strings.Contains(stderr, "signed in as kurt, but the profile is signed in as peggy") || !strings.Contains(stderr, "--switch-user") {
		t.Fatalf("login as another user: exit %d: %s", code, stderr)
	}
	if rec, err := e.stored(); err != nil || rec.Username != "peggy" {
		t.Fatalf("stored after the refused switch: %v %v", rec.Username, err)
	}
	if _, code, stderr := e.tokenJSON("--force-refresh"); code != 0 {
		t.Fatalf("the old login stopped serving: %d %s", code, stderr)
	}
	after, _ := kc.Admin().OfflineSessions(ctx, keycloak.RealmTest, "kurt")
	for _, id := range after {
		if !slices.Contains(before, id) {
			t.Errorf("the refused sign-in's session %s lives on at Keycloak", id)
		}
	}
	old, _ := e.stored()
	if code, stderr := loginAs("kurt", "--switch-user"); code != 0 {
		t.Fatalf("--switch-user: %s", stderr)
	}
	if rec, err := e.stored(); err != nil || rec.Username != "kurt" {
		t.Fatalf("stored after --switch-user: %v %v", rec.Username, err)
	}
	if _, out, _ := e.run("status"); !strings.Contains(out, "kurt") {
		t.Errorf("status after the switch:\n%s", out)
	}
	if status, _, _ := kc.DirectRefresh(ctx, keycloak.RealmTest, old.RefreshToken); status != 400 {
		t.Errorf("the replaced login's session lives on: HTTP %d", status)
	}
	_ = agent

	// The same use case in this process, with no agent.
	agent.stop()
	if code, stderr := loginAs("peggy"); code != exitError || !strings.Contains(stderr, "signed in as peggy, but the profile is signed in as kurt") {
		t.Fatalf("without an agent: exit %d: %s", code, stderr)
	}
	if rec, _ := e.stored(); rec.Username != "kurt" {
		t.Fatalf("without an agent the refused login replaced %s", rec.Username)
	}
}
