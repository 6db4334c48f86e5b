//go:build unix

package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// accountRealm is a realm copy of from whose alice has the account
// client's manage-account role (which a realm's default roles give; the
// shared test realms import their users with their roles listed).
func accountRealm(t *testing.T, kc *keycloak.Server, from string) string {
	t.Helper()
	realm := dpopRealm(t, kc, from, false)
	if err := kc.Admin().GrantAccountRole(context.Background(), realm, "alice", "manage-account"); err != nil {
		t.Fatalf("granting manage-account in realm %s: %v", realm, err)
	}
	return realm
}

// twoMachines logs alice in twice in realm: the env's profile and one
// more ("two machines"), with p's options; it returns the second login.
func (e *cliEnv) twoMachines(realm string, p config.Profile) store.Record {
	e.t.Helper()
	p.Issuer = e.keycloak().Issuer(realm)
	e.writeProfile(p)
	e.login(realm, "alice", "alice-pw")
	other := e.profile + "-b"
	e.loginOther(other, p, "alice", "alice-pw")
	e.t.Cleanup(func() { e.run("logout", "--profile", other) })
	return e.storedAs(other)
}

// alive says whether a stored login's session still refreshes at
// Keycloak (with its DPoP key, if it is bound).
func (e *cliEnv) alive(realm string, rec store.Record, name string) bool {
	e.t.Helper()
	if rec.KeyThumbprint == "" {
		status, _, err := e.keycloak().DirectRefresh(context.Background(), realm, rec.RefreshToken)
		if err != nil {
			e.t.Fatal(err)
		}
		return status == 200
	}
	saved := e.profile
	e.profile = name
	key, err := e.storedKey()
	e.profile = saved
	if err != nil {
		e.t.Fatalf("the DPoP key of profile %s: %v", name, err)
	}
	status, _ := refreshAt(e.t, e.keycloak().Issuer(realm), rec.RefreshToken, key)
	return status == 200
}

func TestLogoutAllRevokesEverySession(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	realm := accountRealm(t, e.keycloak(), keycloak.RealmTest)
	second := e.twoMachines(realm, config.Profile{})
	first, _ := e.stored()

	code, _, stderr := e.run("logout", "--profile", e.profile, "--all")
	if code != exitUsage || !strings.Contains(stderr, "--yes") {
		t.Fatalf("--all without a terminal or --yes: exit %d %s", code, stderr)
	}
	if _, err := e.stored(); err != nil {
		t.Fatal("refused --all still deleted the token")
	}
	code, _, stderr = e.run("logout", "--profile", e.profile, "--all", "--yes")
	if code != 0 || !strings.Contains(stderr, "ended all offline sessions") {
		t.Fatalf("logout --all: %d %s", code, stderr)
	}
	if e.alive(realm, first, e.profile) {
		t.Fatal("this machine's session survived --all")
	}
	if e.alive(realm, second, e.profile+"-b") {
		t.Fatal("the other machine's session survived --all")
	}
	if _, err := e.stored(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the token survived logout --all: %v", err)
	}
}

// Without the account client's manage-account role (the shared test
// realm's alice) Keycloak's account API refuses: --all revokes this
// machine's session only, and says so, and where to end the others.
func TestLogoutAllWithoutManageAccount(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	second := e.twoMachines(keycloak.RealmTest, config.Profile{})
	first, _ := e.stored()

	code, _, stderr := e.run("logout", "--profile", e.profile, "--all", "--yes")
	for _, want := range []string{"revoked this machine's session", "sessions on other machines are NOT ended", "manage-account", "/realms/" + keycloak.RealmTest + "/account"} {
		if code != 0 || !strings.Contains(stderr, want) {
			t.Fatalf("logout --all without manage-account: exit %d, no %q in:\n%s", code, want, stderr)
		}
	}
	if e.alive(keycloak.RealmTest, first, e.profile) {
		t.Fatal("this machine's session survived --all")
	}
	if !e.alive(keycloak.RealmTest, second, e.profile+"-b") {
		t.Fatal("the other machine's session ended, yet --all said it did not")
	}
}

// A DPoP-bound login (dpop: on, the realm demanding proofs) reaches the
// account API with its bound access token and a proof with ath.
func TestLogoutAllBoundLogin(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := accountRealm(t, kc, keycloak.RealmTest)
	if err := kc.Admin().RequireDPoP(context.Background(), realm, false); err != nil {
		t.Fatal(err)
	}
	second := e.twoMachines(realm, config.Profile{DPoP: config.DPoPOn})
	first, _ := e.stored()
	if first.KeyThumbprint == "" || second.KeyThumbprint == "" {
		t.Fatal("the logins are not bound")
	}
	if !e.alive(realm, second, e.profile+"-b") {
		t.Fatal("the second login does not refresh before --all")
	}
	code, _, stderr := e.run("logout", "--profile", e.profile, "--all", "--yes")
	if code != 0 || !strings.Contains(stderr, "ended all offline sessions") {
		t.Fatalf("logout --all of a bound login: %d %s", code, stderr)
	}
	if e.alive(realm, second, e.profile+"-b") {
		t.Fatal("the other machine's bound session survived --all")
	}
}

// With an agent running, it does the logout --all, the same way.
func TestLogoutAllThroughTheAgent(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	realm := accountRealm(t, e.keycloak(), keycloak.RealmTest)
	second := e.twoMachines(realm, config.Profile{})
	agent := e.startAgent()
	defer agent.stop()
	code, _, stderr := e.run("logout", "--profile", e.profile, "--all", "--yes")
	if code != 0 || !strings.Contains(stderr, "ended all offline sessions") {
		t.Fatalf("logout --all through the agent: %d %s", code, stderr)
	}
	if e.alive(realm, second, e.profile+"-b") {
		t.Fatal("the other machine's session survived --all through the agent")
	}
}
