//go:build unix

package main

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// dpopRealm makes a realm of its own for one test, a copy of from with
// DPoP required or not (its users' sessions are the test's alone), and deletes it
// at the end. The shared realm files are never changed.
func dpopRealm(t *testing.T, kc *keycloak.Server, from string, requireDPoP bool) string {
	t.Helper()
	name := fmt.Sprintf("dpop-%d-%s", os.Getpid(), strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"))
	if len(name) > 60 {
		name = name[:60]
	}
	ctx := context.Background()
	if err := kc.Admin().CopyRealm(ctx, from, name, nil); err != nil {
		t.Fatalf("creating realm %s: %v", name, err)
	}
	t.Cleanup(func() { kc.Admin().DeleteRealm(context.Background(), name) })
	if requireDPoP {
		if err := kc.Admin().RequireDPoP(ctx, name, true); err != nil {
			t.Fatalf("requiring DPoP in realm %s: %v", name, err)
		}
	}
	return name
}

// writeProfile saves the env's profile as p before any login.
func (e *cliEnv) writeProfile(p config.Profile) {
	e.t.Helper()
	path, _ := config.FilePath()
	cfg := config.Empty(path)
	if err := cfg.SetProfile(e.profile, p); err != nil {
		e.t.Fatal(err)
	}
	if err := cfg.Save(); err != nil {
		e.t.Fatal(err)
	}
}

// storedKey is the env's profile's DPoP key, as the store holds it.
func (e *cliEnv) storedKey() (crypto.Signer, error) {
	p, ok := e.loadProfile()
	if !ok {
		return nil, store.ErrNotFound
	}
	ks, err := store.KeysForProfile(p)
	if err != nil {
		return nil, err
	}
	return ks.Get(context.Background(), e.profile)
}

// refreshAt posts a refresh grant straight to Keycloak, proven by key
// (nil: no proof), as a thief holding a copy of the token would.
func refreshAt(t *testing.T, issuer, rt string, key crypto.Signer) (int, string) {
	t.Helper()
	hc := &http.Client{}
	if key != nil {
		hc.Transport = &dpop.Transport{Key: key}
	}
	resp, err := hc.PostForm(issuer+"/protocol/openid-connect/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {"kc-agent"}, "refresh_token": {rt}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error
}

// boundTo reads cnf.jkt of a JWT-shaped offline token.
func boundTo(t *testing.T, rt string) string {
	t.Helper()
	parts := strings.Split(rt, ".")
	if len(parts) != 3 {
		t.Fatal("the offline token is not a JWT")
	}
	data, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	json.Unmarshal(data, &c)
	return c.Cnf.JKT
}

// checkBound: the stored login names the stored key, and Keycloak bound
// the stored offline token to it.
func (e *cliEnv) checkBound() (store.Record, crypto.Signer) {
	e.t.Helper()
	rec, err := e.stored()
	if err != nil {
		e.t.Fatal(err)
	}
	key, err := e.storedKey()
	if err != nil {
		e.t.Fatalf("no DPoP key stored beside the token: %v", err)
	}
	jkt, _ := dpop.Thumbprint(key)
	if rec.KeyThumbprint != jkt || boundTo(e.t, rec.RefreshToken) != jkt {
		e.t.Fatalf("the login is not bound to the stored key: record names %q, token %q, key %q", rec.KeyThumbprint, boundTo(e.t, rec.RefreshToken), jkt)
	}
	return rec, key
}

// Issue 29's theft: with dpop: on, a login (browser, rotation realm) is
// bound to a key kept beside the token; a copy of the offline token, read
// out of the keychain as an attacker with the user's keychain would,
// refreshes at Keycloak neither without a proof nor with another key;
// the agent, restarted, refreshes it with its stored key (rotating it,
// still bound), and logout deletes both token and key.
func TestDPoPStolenOfflineTokenIsWorthless(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := dpopRealm(t, kc, keycloak.RealmRotation, false)
	issuer := kc.Issuer(realm)
	e.writeProfile(config.Profile{Issuer: issuer, DPoP: config.DPoPOn})
	e.login(realm, "alice", "alice-pw")
	stolen, key := e.checkBound()

	if status, code := refreshAt(t, issuer, stolen.RefreshToken, nil); status != 400 || code != "invalid_grant" {
		t.Fatalf("the stolen token without a proof: HTTP %d %s", status, code)
	}
	other, _ := dpop.NewKey()
	if status, code := refreshAt(t, issuer, stolen.RefreshToken, other); status != 400 || code != "invalid_grant" {
		t.Fatalf("the stolen token with another key: HTTP %d %s", status, code)
	}

	agent := e.startAgent()
	if code, stderr := e.boundToken("--force-refresh"); code != 0 {
		t.Fatalf("the agent's refresh with its key: exit %d: %s", code, stderr)
	}
	agent.stop()
	agent = e.startAgent() // restarted: it loads the key from the store
	if code, stderr := e.boundToken("--force-refresh"); code != 0 {
		t.Fatalf("the restarted agent's refresh: exit %d: %s", code, stderr)
	}
	rotated, _ := e.checkBound()
	if rotated.RefreshToken == stolen.RefreshToken {
		t.Fatal("the rotation realm's refresh did not rotate the stored token")
	}
	agent.stop()

	code, _, stderr := e.run("logout", "--profile", e.profile)
	if code != 0 {
		t.Fatalf("logout: exit %d: %s", code, stderr)
	}
	if _, err := e.stored(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the token survived logout: %v", err)
	}
	if _, err := e.storedKey(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the key survived logout: %v", err)
	}
	checkBoundLogout(t, kc, realm, issuer, rotated.RefreshToken, key, stderr)
}

// checkBoundLogout: either Keycloak ended the session (a fixed
// keycloak/keycloak#50306), or logout said it could not and why the copy
// is useless all the same.
func checkBoundLogout(t *testing.T, kc *keycloak.Server, realm, issuer, rt string, key crypto.Signer, stderr string) {
	t.Helper()
	t.Logf("logout said: %s", stderr)
	if strings.Contains(stderr, "session ended at the server") {
		if status, _ := refreshAt(t, issuer, rt, key); status != 400 {
			t.Fatalf("the session survived a logout that said it ended it: HTTP %d", status)
		}
		return
	}
	for _, want := range []string{"keycloak/keycloak#50306", "offline idle time", "without the key"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("logout of a bound session does not say %q:\n%s", want, stderr)
		}
	}
	kc.Admin().RevokeOfflineSessions(context.Background(), realm, "alice")
}

// The lockout of issue 29: a realm whose client policy requires DPoP for
// public clients. Without dpop: on the login fails after the browser step
// with a configuration error whose hint is `dpop: on` (never "sign in
// again", which can't help), and stores nothing; with dpop: on, a device
// login succeeds and is bound.
func TestDPoPRequiredByTheRealm(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := dpopRealm(t, kc, keycloak.RealmTest, true)
	issuer := kc.Issuer(realm)
	e.writeProfile(config.Profile{Issuer: issuer})
	wait := browse(keycloak.NewFormBrowser("carol", "carol-pw"))
	code, _, stderr := e.run("login", "--profile", e.profile, "--timeout", "60s")
	wait()
	if code != exitError || !strings.Contains(stderr, "requires a DPoP proof") || !strings.Contains(stderr, "set `dpop: on` for this profile") {
		t.Fatalf("login to a realm that requires DPoP, without proofs: exit %d:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "sign in again") || strings.Contains(stderr, "no longer valid") {
		t.Fatalf("the error sends the user round in circles:\n%s", stderr)
	}
	if _, err := e.stored(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed login stored something: %v", err)
	}

	e.writeProfile(config.Profile{Issuer: issuer, DPoP: config.DPoPOn})
	done := make(chan error, 1)
	openURLHook = func(u string) error {
		go func() {
			_, err := keycloak.NewFormBrowser("carol", "carol-pw").Visit(context.Background(), u)
			done <- err
		}()
		return nil
	}
	code, _, stderr = e.run("login", "--profile", e.profile, "--device", "--timeout", "60s")
	if err := <-done; err != nil {
		t.Fatalf("device approval: %v", err)
	}
	if code != 0 {
		t.Fatalf("device login with dpop: on: exit %d: %s", code, stderr)
	}
	rec, key := e.checkBound()
	if status, _ := refreshAt(t, issuer, rec.RefreshToken, key); status != 200 {
		t.Fatalf("the bound login's own refresh: HTTP %d", status)
	}
}

// The agent's own sign-in (`kc-agent login` while an agent runs) binds
// the login too, and the agent refreshes it with the stored key. A bound
// login whose key went missing is login_required that says so, once, not a
// loop of refreshes; logout --all then revokes the session (Keycloak's
// revocation needs no proof) and deletes what is left.
func TestDPoPSignInThroughTheAgent(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := dpopRealm(t, kc, keycloak.RealmTest, false)
	issuer := kc.Issuer(realm)
	e.writeProfile(config.Profile{Issuer: issuer, DPoP: config.DPoPOn})
	e.startAgent()
	e.login(realm, "carol", "carol-pw")
	rec, _ := e.checkBound()
	if code, stderr := e.boundToken("--force-refresh"); code != 0 {
		t.Fatalf("the agent's refresh of its own bound sign-in: exit %d: %s", code, stderr)
	}
	rec, key := e.checkBound()

	p, _ := e.loadProfile()
	ks, _ := store.KeysForProfile(p)
	if err := ks.Delete(context.Background(), e.profile); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := e.run("token", "--profile", e.profile, "--force-refresh")
	if code != exitLoginRequired || !strings.Contains(stderr, "bound to a DPoP key that is missing") || !strings.Contains(stderr, "kc-agent login --profile "+e.profile) {
		t.Fatalf("a bound login without its key: exit %d:\n%s", code, stderr)
	}
	if status, _ := refreshAt(t, issuer, rec.RefreshToken, key); status != 200 {
		t.Fatalf("the agent ended the session on its own: HTTP %d", status)
	}
	code, _, stderr = e.run("logout", "--profile", e.profile, "--all", "--yes")
	if code != 0 || !strings.Contains(stderr, "revoked") {
		t.Fatalf("logout --all of a bound login without its key: exit %d: %s", code, stderr)
	}
	if status, _ := refreshAt(t, issuer, rec.RefreshToken, key); status != 400 {
		t.Fatalf("the session survived logout --all: HTTP %d", status)
	}
	if _, err := e.stored(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the token survived logout: %v", err)
	}
}

// With store: file and no keychain at all, the key is a second owner-only
// file beside the token file, and logout deletes both.
func TestDPoPFileStore(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	kc := e.keycloak()
	realm := dpopRealm(t, kc, keycloak.RealmTest, false)
	e.writeProfile(config.Profile{Issuer: kc.Issuer(realm), Store: config.StoreFile, DPoP: config.DPoPOn})
	e.login(realm, "carol", "carol-pw")
	e.checkBound()
	keyFile := filepath.Join(os.Getenv("KC_AGENT_STATE_DIR"), "tokens", e.profile+".dpop-key")
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v %v", keyFile, fi, err)
	}
	if code, _, stderr := e.run("logout", "--profile", e.profile); code != 0 {
		t.Fatalf("logout: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the key file survived logout: %v", err)
	}
}
