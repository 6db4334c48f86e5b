//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

// plainClient is a second public client of the mode tests' realms, a copy
// of kc-agent that the realm's DPoP policy does not name.
const plainClient = "kc-agent-plain"

// modesRealm is a copy of from (its users' sessions the test's own) with
// a second public client, plainClient, and a dpop-bind-enforcer for the
// client kc-agent only: refresh tokens only with refreshOnly (access
// tokens stay Bearer), or access tokens too.
func modesRealm(t *testing.T, kc *keycloak.Server, from string, refreshOnly bool) string {
	t.Helper()
	realm := dpopRealm(t, kc, from, false)
	ctx := context.Background()
	if err := kc.Admin().CopyClient(ctx, realm, "kc-agent", plainClient); err != nil {
		t.Fatal(err)
	}
	if err := kc.Admin().RequireDPoPFor(ctx, realm, refreshOnly, "kc-agent"); err != nil {
		t.Fatal(err)
	}
	return realm
}

// profileStatus is the env's profile in the agent's status.
func (e *cliEnv) profileStatus() ipc.ProfileStatus {
	e.t.Helper()
	_, out, stderr := e.run("status", "--profile", e.profile, "--format", "json")
	var st ipc.StatusResponse
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("status --format json: %v: %s", err, stderr)
	}
	for _, p := range st.Profiles {
		if p.Name == e.profile {
			return p
		}
	}
	e.t.Fatalf("status has no profile %s", e.profile)
	return ipc.ProfileStatus{}
}

// bearerAPI checks at as a Bearer-only API does: its signature, issuer
// and expiry against the realm's keys, and no key binding (cnf), which
// such an API can not prove. (Keycloak's own userinfo endpoint is no such
// API: it runs the realm's client policies, and the dpop-bind-enforcer
// demands a proof there even with refresh-token-only binding.)
func bearerAPI(t *testing.T, issuer, at string) {
	t.Helper()
	ctx := context.Background()
	prov, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.Verifier(&gooidc.Config{SkipClientIDCheck: true}).Verify(ctx, at); err != nil {
		t.Fatalf("a Bearer API refused the served token: %v", err)
	}
	if tokens.BoundJKT(at) != "" {
		t.Fatal("the served Bearer token is bound to a key")
	}
}

// userinfo sends at as a Bearer token to Keycloak's userinfo endpoint.
func userinfo(t *testing.T, issuer, at string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, issuer+"/protocol/openid-connect/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// auto (the default) against a client the realm's refresh-token-only
// policy names: the login is bound (refresh mode) and the agent serves
// Bearer access tokens that a Bearer API (userinfo) takes, though the
// grant's first access token was bound; rotation (Revoke Refresh Token on)
// works with proofs, status says so, and logout --all revokes the session.
func TestDPoPAutoBindsWhereTheRealmDemands(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := modesRealm(t, kc, keycloak.RealmRotation, true)
	issuer := kc.Issuer(realm)
	e.writeProfile(config.Profile{Issuer: issuer})
	e.startAgent()
	e.login(realm, "alice", "alice-pw")
	rec, key := e.checkBound()
	if rec.DPoP != config.DPoPRefresh {
		t.Fatalf("the login was kept in mode %q, want refresh", rec.DPoP)
	}
	// The sign-in's test refresh: one, which gave a Bearer access token.
	if n, err := kc.Admin().CountEvents(context.Background(), realm, "REFRESH_TOKEN", "alice"); err != nil || n != 1 {
		t.Fatalf("refreshes during the sign-in: %d (%v), want the one test refresh", n, err)
	}
	for range 2 {
		tr, code, stderr := e.tokenJSON("--force-refresh")
		if code != 0 || tr.TokenType != "Bearer" || tokens.BoundJKT(tr.AccessToken) != "" {
			t.Fatalf("token: exit %d, type %q, bound %v: %s", code, tr.TokenType, tokens.BoundJKT(tr.AccessToken) != "", stderr)
		}
		bearerAPI(t, issuer, tr.AccessToken)
	}
	rotated, _ := e.checkBound()
	if rotated.RefreshToken == rec.RefreshToken {
		t.Fatal("the rotation realm's refresh did not rotate the stored token")
	}
	p := e.profileStatus()
	if p.DPoPMode != config.DPoPAuto || p.DPoPLogin != config.DPoPRefresh || p.DPoPKey != "matches" || p.DPoPNote != "" {
		t.Fatalf("status: mode %q, login %q, key %q, note %q", p.DPoPMode, p.DPoPLogin, p.DPoPKey, p.DPoPNote)
	}
	e.checkDoctor("demands proofs of client kc-agent (dpop-bind-enforcer): logins are bound", "bound to a key (made in mode refresh); cnf.jkt matches the stored key")
	code, _, stderr := e.run("logout", "--profile", e.profile, "--all", "--yes")
	if code != 0 || !strings.Contains(stderr, "revoked") {
		t.Fatalf("logout --all of a bound login: exit %d: %s", code, stderr)
	}
	if status, _ := refreshAt(t, issuer, rotated.RefreshToken, key); status != 400 {
		t.Fatalf("the session survived logout --all: HTTP %d", status)
	}
	if _, err := e.storedKey(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the key survived logout: %v", err)
	}
}

// auto against a client no policy names: the login is not bound (binding
// it would make its access tokens DPoP tokens), no key is kept, and the
// served token is Bearer.
func TestDPoPAutoStaysOffForAPlainClient(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := modesRealm(t, kc, keycloak.RealmTest, true)
	e.writeProfile(config.Profile{Issuer: kc.Issuer(realm), ClientID: plainClient})
	e.startAgent()
	e.login(realm, "carol", "carol-pw")
	rec, err := e.stored()
	if err != nil || rec.KeyThumbprint != "" || tokens.BoundJKT(rec.RefreshToken) != "" {
		t.Fatalf("auto bound a login the realm does not ask to bind: %v", err)
	}
	if _, err := e.storedKey(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a key was kept for an unbound login: %v", err)
	}
	tr, code, stderr := e.tokenJSON()
	if code != 0 || tr.TokenType != "Bearer" {
		t.Fatalf("token: exit %d %q: %s", code, tr.TokenType, stderr)
	}
	p := e.profileStatus()
	if p.DPoPMode != config.DPoPAuto || p.DPoPLogin != config.DPoPOff || p.DPoPNote != "" {
		t.Fatalf("status: mode %q, login %q, note %q", p.DPoPMode, p.DPoPLogin, p.DPoPNote)
	}
	e.checkDoctor("auto (the default)", "does not demand proofs of client "+plainClient+": with auto, logins are not bound", "the stored login is not bound to a key")
}

// checkDoctor: doctor's output has every one of want.
func (e *cliEnv) checkDoctor(want ...string) {
	e.t.Helper()
	_, out, _ := e.run("doctor", "--profile", e.profile)
	for _, w := range want {
		if !strings.Contains(out, w) {
			e.t.Errorf("doctor does not say %q:\n%s", w, out)
		}
	}
}

// refresh against a client whose access tokens the realm binds (no
// policy: Keycloak binds them whenever a proof comes): the sign-in's test
// refresh finds them bound, and the login fails with the error that
// names the realm setting, storing nothing. on binds the login and its
// access tokens (type DPoP, refused as Bearer by userinfo).
func TestDPoPRefreshMeetsARealmThatBindsAccessTokens(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := modesRealm(t, kc, keycloak.RealmTest, true)
	issuer := kc.Issuer(realm)
	e.writeProfile(config.Profile{Issuer: issuer, ClientID: plainClient, DPoP: config.DPoPRefresh})
	wait := browse(keycloak.NewFormBrowser("carol", "carol-pw"))
	code, _, stderr := e.run("login", "--profile", e.profile, "--timeout", "60s")
	wait()
	for _, want := range []string{"binds the access tokens of client " + plainClient, "dpop-bind-enforcer", "allow-only-refresh-token-binding", "`dpop: on`"} {
		if code != exitError || !strings.Contains(stderr, want) {
			t.Fatalf("refresh mode where access tokens are bound: exit %d, no %q:\n%s", code, want, stderr)
		}
	}
	if _, err := e.stored(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed login stored something: %v", err)
	}
	if _, err := e.storedKey(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed login kept a key: %v", err)
	}
	kc.Admin().RevokeOfflineSessions(context.Background(), realm, "carol")

	e.writeProfile(config.Profile{Issuer: issuer, ClientID: plainClient, DPoP: config.DPoPOn})
	e.startAgent()
	e.login(realm, "carol", "carol-pw")
	rec, key := e.checkBound()
	tr, code, stderr := e.dpopToken("--force-refresh")
	if code != 0 || tr.TokenType != "DPoP" || tokens.BoundJKT(tr.AccessToken) != rec.KeyThumbprint {
		t.Fatalf("on: exit %d, type %q: %s", code, tr.TokenType, stderr)
	}
	if status := userinfo(t, issuer, tr.AccessToken); status != 401 {
		t.Fatalf("a bound token sent as Bearer: HTTP %d", status)
	}
	if p := e.profileStatus(); p.DPoPLogin != config.DPoPOn || p.DPoPKey != "matches" {
		t.Fatalf("status: login %q, key %q", p.DPoPLogin, p.DPoPKey)
	}
	e.run("logout", "--profile", e.profile, "--all", "--yes")
	if status, _ := refreshAt(t, issuer, rec.RefreshToken, key); status != 400 {
		t.Fatalf("the session survived logout --all: HTTP %d", status)
	}
}

// auto where the realm binds access tokens. Measured on Keycloak 26.7:
// the dpop-bind-enforcer without refresh-token-only binding (and without
// auto-configure) demands no proof of a request that comes without one,
// so auto stays off there, and the unbound login works as it always did.
// The client's own switch "require DPoP-bound tokens"
// (dpop.bound.access.tokens, what the enforcer's auto-configure turns on)
// demands a proof of every token request: auto binds, the test refresh
// finds the access tokens bound, and the login is kept as on (no Bearer
// API can work with that client anyway); status says why its tokens are
// DPoP tokens.
func TestDPoPAutoWhereTheRealmBindsAccessTokens(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := modesRealm(t, kc, keycloak.RealmTest, false)
	e.writeProfile(config.Profile{Issuer: kc.Issuer(realm)})
	agent := e.startAgent()
	e.login(realm, "carol", "carol-pw")
	if rec, err := e.stored(); err != nil || rec.KeyThumbprint != "" {
		t.Fatalf("auto bound a login where the enforcer demands no proof: %v", err)
	}
	if tr, code, stderr := e.tokenJSON("--force-refresh"); code != 0 || tr.TokenType != "Bearer" {
		t.Fatalf("the unbound login's refresh: exit %d %q: %s", code, tr.TokenType, stderr)
	}
	agent.stop()
	kc.Admin().RevokeOfflineSessions(context.Background(), realm, "carol")

	if err := kc.Admin().SetClientAttributes(context.Background(), realm, "kc-agent", map[string]string{"dpop.bound.access.tokens": "true"}); err != nil {
		t.Fatal(err)
	}
	e.startAgent()
	e.login(realm, "carol", "carol-pw")
	rec, _ := e.checkBound()
	if rec.DPoP != config.DPoPOn {
		t.Fatalf("kept in mode %q, want on", rec.DPoP)
	}
	if tr, code, stderr := e.dpopToken(); code != 0 || tr.TokenType != "DPoP" {
		t.Fatalf("token: exit %d %q: %s", code, tr.TokenType, stderr)
	}
	if p := e.profileStatus(); p.DPoPLogin != config.DPoPOn || !strings.Contains(p.DPoPNote, "Bind only refresh token for public client") {
		t.Fatalf("status: login %q, note %q", p.DPoPLogin, p.DPoPNote)
	}
	kc.Admin().RevokeOfflineSessions(context.Background(), realm, "carol")
}

// Migration: a login made unbound keeps working under dpop: refresh, and
// status says how to bind it. When the realm's admin turns the policy on,
// the unbound login's refresh fails with a configuration error (not
// "session ended"), status under auto says the realm demands proofs, and
// a new `kc-agent login` binds the login.
func TestDPoPMigration(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := dpopRealm(t, kc, keycloak.RealmTest, false)
	issuer := kc.Issuer(realm)
	e.writeProfile(config.Profile{Issuer: issuer, DPoP: config.DPoPOff})
	e.login(realm, "carol", "carol-pw")
	e.writeProfile(config.Profile{Issuer: issuer, DPoP: config.DPoPRefresh})
	agent := e.startAgent()
	if _, code, stderr := e.tokenJSON("--force-refresh"); code != 0 {
		t.Fatalf("an unbound login under dpop: refresh: exit %d: %s", code, stderr)
	}
	p := e.profileStatus()
	if p.DPoPLogin != config.DPoPOff || !strings.Contains(p.DPoPNote, "not bound") || !strings.Contains(p.DPoPNote, "kc-agent login --profile "+e.profile) || !strings.Contains(p.DPoPNote, "login(force=True)") {
		t.Fatalf("status of an unbound login under refresh: %+v", p)
	}

	if err := kc.Admin().RequireDPoP(context.Background(), realm, true); err != nil {
		t.Fatal(err)
	}
	agent.stop()
	e.writeProfile(config.Profile{Issuer: issuer})
	e.startAgent()
	code, _, stderr := e.run("token", "--profile", e.profile, "--force-refresh")
	if code != exitLoginRequired || !strings.Contains(stderr, "requires a DPoP proof") || strings.Contains(stderr, "no longer valid") {
		t.Fatalf("an unbound login where the realm now demands proofs: exit %d:\n%s", code, stderr)
	}
	if p := e.profileStatus(); !strings.Contains(p.DPoPNote, "demands DPoP proofs of client kc-agent") {
		t.Fatalf("status under auto does not say the realm demands proofs: %+v", p)
	}
	e.login(realm, "carol", "carol-pw")
	if rec, _ := e.checkBound(); rec.DPoP != config.DPoPRefresh {
		t.Fatalf("the new login is in mode %q", rec.DPoP)
	}
	if tr, code, stderr := e.tokenJSON(); code != 0 || tr.TokenType != "Bearer" {
		t.Fatalf("after the new login: exit %d %q: %s", code, tr.TokenType, stderr)
	}
	kc.Admin().RevokeOfflineSessions(context.Background(), realm, "carol")
}

// A refresh-mode login whose realm starts binding access tokens (the
// admin turns on the client's DPoP-bound tokens switch): the agent's next
// refresh gets a bound access token, refreshes once more, gets another,
// and fails with the error that names the realm setting, never serving
// either as Bearer; the rotated offline token is kept (no reuse). With
// `dpop: on` the same login then serves DPoP tokens without a new
// sign-in, from the kept offline token (the realm revokes used ones).
func TestDPoPRefreshModeWhenTheRealmStartsBindingAccessTokens(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := modesRealm(t, kc, keycloak.RealmRotation, true)
	issuer := kc.Issuer(realm)
	e.writeProfile(config.Profile{Issuer: issuer, DPoP: config.DPoPRefresh})
	agent := e.startAgent()
	e.login(realm, "alice", "alice-pw")
	if tr, code, stderr := e.tokenJSON(); code != 0 || tr.TokenType != "Bearer" {
		t.Fatalf("before: exit %d %q: %s", code, tr.TokenType, stderr)
	}
	before, _ := e.checkBound()

	if err := kc.Admin().SetClientAttributes(context.Background(), realm, "kc-agent", map[string]string{"dpop.bound.access.tokens": "true"}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := e.run("token", "--profile", e.profile, "--force-refresh")
	for _, want := range []string{"binds the access tokens of client kc-agent", "allow-only-refresh-token-binding", "`dpop: on`"} {
		if code != exitLoginRequired || stdout != "" || !strings.Contains(stderr, want) {
			t.Fatalf("a refresh-mode login meeting bound access tokens: exit %d, no %q:\n%s", code, want, stderr)
		}
	}
	if n := strings.Count(agent.log.String(), "refreshing once more for a Bearer one"); n != 1 {
		t.Fatalf("the agent refreshed once more %d times, want 1", n)
	}
	if after, _ := e.checkBound(); after.RefreshToken == before.RefreshToken {
		t.Fatal("the rotated offline token was not kept")
	}
	agent.stop() // (the rotation realm: the kept token's use below proves it is the live one)

	e.writeProfile(config.Profile{Issuer: issuer, DPoP: config.DPoPOn})
	e.startAgent()
	if tr, code, stderr := e.dpopToken(); code != 0 || tr.TokenType != "DPoP" {
		t.Fatalf("under dpop: on: exit %d %q: %s", code, tr.TokenType, stderr)
	}
	kc.Admin().RevokeOfflineSessions(context.Background(), realm, "alice")
}

// dpopToken is the profile's access token as `kc-agent token --format
// dpop` prints it (the other formats refuse a bound token): its type is
// the Authorization header's scheme.
func (e *cliEnv) dpopToken(args ...string) (ipc.TokenResponse, int, string) {
	e.t.Helper()
	code, stdout, stderr := e.run(append([]string{"token", "--profile", e.profile, "--format", "dpop", "--url", "https://api.example/"}, args...)...)
	var tr ipc.TokenResponse
	for _, line := range strings.Split(stdout, "\n") {
		if v, ok := strings.CutPrefix(line, "Authorization: "); ok {
			tr.TokenType, tr.AccessToken, _ = strings.Cut(strings.TrimSpace(v), " ")
		}
	}
	return tr, code, stderr
}
