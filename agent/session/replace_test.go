package session

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
)

// replaceKeeper holds one login (prev); Replace hands it to accept and
// then, as the real keepers do, fails with putErr (the store's Put, after
// which it calls accept's undo), or keeps rec.
type replaceKeeper struct {
	prev   store.Record
	putErr error
	kept   *store.Record
}

func (k *replaceKeeper) CheckWritable(context.Context, string) error { return nil }
func (k *replaceKeeper) Remove(context.Context, string) (store.Record, error) {
	return store.Record{}, store.ErrNotFound
}
func (k *replaceKeeper) Describe(string) string { return "test" }
func (k *replaceKeeper) Replace(_ context.Context, _ string, rec store.Record, accept func(store.Record) (func(), error)) (store.Record, error) {
	undo, err := accept(k.prev)
	if err != nil {
		return store.Record{}, err
	}
	if k.putErr != nil {
		if undo != nil {
			undo()
		}
		return store.Record{}, k.putErr
	}
	k.kept = &rec
	return k.prev, nil
}

// endIdP: discovery, and logout and revocation endpoints that note the
// public key of each request's DPoP proof ("" for none), by endpoint and
// token, and answer as Keycloak 26.7 does to a bound session's logout
// (keycloak#50306).
type endIdP struct {
	issuer string
	mu     sync.Mutex
	proofs map[string]string // "logout rt" or "revoke rt" -> the proof's jwk x
}

func newEndIdP(t *testing.T) *endIdP {
	idp := &endIdP{proofs: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/realms/r/.well-known/openid-configuration" {
			base := idp.issuer + "/protocol/openid-connect"
			json.NewEncoder(w).Encode(map[string]any{"issuer": idp.issuer, "authorization_endpoint": base + "/auth",
				"token_endpoint": base + "/token", "end_session_endpoint": base + "/logout",
				"revocation_endpoint": base + "/revoke", "jwks_uri": base + "/certs"})
			return
		}
		r.ParseForm()
		idp.mu.Lock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/logout"):
			idp.proofs["logout "+r.PostForm.Get("refresh_token")] = proofJWKX(r.Header.Get("DPoP"))
		case strings.HasSuffix(r.URL.Path, "/revoke"):
			idp.proofs["revoke "+r.PostForm.Get("token")] = proofJWKX(r.Header.Get("DPoP"))
			idp.mu.Unlock()
			return // 200
		}
		idp.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		w.Write([]byte(`{"error":"invalid_grant","error_description":"DPoP proof is missing"}`))
	}))
	t.Cleanup(srv.Close)
	idp.issuer = srv.URL + "/realms/r"
	return idp
}

// proofJWKX is the x coordinate of a DPoP proof's jwk ("" without one).
func proofJWKX(proof string) string {
	head, _, _ := strings.Cut(proof, ".")
	b, _ := base64.RawURLEncoding.DecodeString(head)
	var h struct{ JWK dpop.JWK }
	json.Unmarshal(b, &h)
	return h.JWK.X
}

// proof is the jwk x of the proof that came with the request to endpoint
// ("logout", "revoke") for rt; ok is false when there was none.
func (idp *endIdP) proof(endpoint, rt string) (x string, ok bool) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	x, ok = idp.proofs[endpoint+" "+rt]
	return x, ok
}

// ended says how rt's session was ended: "logout", "revoke", or "".
func (idp *endIdP) ended(rt string) string {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	for _, e := range []string{"logout", "revoke"} {
		if _, ok := idp.proofs[e+" "+rt]; ok {
			return e
		}
	}
	return ""
}

func jwkX(t *testing.T, key crypto.Signer) string {
	jwk, err := dpop.PublicJWK(key)
	if err != nil {
		t.Fatal(err)
	}
	return jwk.X
}

// replaceSetup: a key store holding the key of the stored, bound login.
func replaceSetup(t *testing.T) (store.KeyStore, crypto.Signer, string) {
	keys := &store.FileKeys{Dir: t.TempDir()}
	old := tokens.KeysFor
	tokens.KeysFor = func(config.Profile) (store.KeyStore, error) { return keys, nil }
	t.Cleanup(func() { tokens.KeysFor = old })
	oldKey, _ := dpop.NewKey()
	if err := keys.Put(context.Background(), "lab", oldKey); err != nil {
		t.Fatal(err)
	}
	jkt, _ := dpop.Thumbprint(oldKey)
	return keys, oldKey, jkt
}

// replaceKeep keeps a new login (bound to a new key, or not) over k's.
func replaceKeep(t *testing.T, k *replaceKeeper, issuer string, newKey crypto.Signer) ipc.LoginStatus {
	t.Helper()
	prof := config.Profile{Issuer: issuer, ClientID: "kc-agent"}
	svc := New(func(string) (Profile, error) { return Profile{Config: prof}, nil }, k, nil)
	defer svc.Close()
	client, err := oidc.New(context.Background(), issuer, "kc-agent", oidc.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if newKey != nil {
		client = client.WithDPoP(newKey)
	}
	si := &signIn{ready: make(chan struct{}), ended: make(chan struct{}), st: ipc.LoginStatus{Profile: "lab", State: ipc.LoginPending}}
	// (a bound new login is settled by refreshes; "on" skips them)
	prof.DPoP = config.DPoPOn
	svc.keep(context.Background(), si, prof, client, &oidc.LoginResult{Token: &oidc.Token{RefreshToken: "new-rt"}, Identity: oidc.Identity{Subject: "s", Username: "alice"}})
	return si.status(false)
}

func boundPrev(issuer, jkt string) store.Record {
	return store.Record{RefreshToken: "old-rt", Issuer: issuer, ClientID: "kc-agent", Subject: "s", KeyThumbprint: jkt, DPoP: config.DPoPOn}
}

// A bound login replaced by an unbound one (dpop: off now, or auto
// against a realm without the enforcer): the old key is deleted once the
// new login is stored, as logout deletes it; the old session is revoked
// (Keycloak's logout can't end a bound session: keycloak#50306) with a
// proof by its own key.
func TestReplacingABoundLoginWithAnUnboundOneDeletesTheOldKey(t *testing.T) {
	keys, oldKey, jkt := replaceSetup(t)
	idp := newEndIdP(t)
	k := &replaceKeeper{prev: boundPrev(idp.issuer, jkt)}
	replaceKeep(t, k, idp.issuer, nil)
	if k.kept == nil || k.kept.KeyThumbprint != "" {
		t.Fatalf("the new unbound login was not kept: %+v", k.kept)
	}
	if _, err := keys.Get(context.Background(), "lab"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the replaced bound login's key is still in the key store (err %v)", err)
	}
	if x, ok := idp.proof("revoke", "old-rt"); !ok || x != jwkX(t, oldKey) {
		t.Fatalf("the replaced bound session was not revoked with a proof by its own key (ended by %q)", idp.ended("old-rt"))
	}
}

// A bound login replaced by another: the old session is revoked with a
// proof by the old key (read before the new one overwrote it), and the
// new login's key is kept.
func TestReplacingABoundLoginRevokesItWithItsOwnKey(t *testing.T) {
	keys, oldKey, jkt := replaceSetup(t)
	idp := newEndIdP(t)
	k := &replaceKeeper{prev: boundPrev(idp.issuer, jkt)}
	newKey, _ := dpop.NewKey()
	replaceKeep(t, k, idp.issuer, newKey)
	if got, err := keys.Get(context.Background(), "lab"); err != nil || jwkX(t, got) != jwkX(t, newKey) {
		t.Fatalf("the new login's key is not kept (%v)", err)
	}
	if x, ok := idp.proof("revoke", "old-rt"); !ok || x != jwkX(t, oldKey) {
		t.Fatalf("the replaced bound session was not revoked with a proof by its own key (ended by %q)", idp.ended("old-rt"))
	}
}

// An unbound login replaced by a bound one is ended as before keys: a
// logout without a proof.
func TestReplacingAnUnboundLoginLogsItOut(t *testing.T) {
	replaceSetup(t)
	idp := newEndIdP(t)
	k := &replaceKeeper{prev: store.Record{RefreshToken: "old-rt", Issuer: idp.issuer, ClientID: "kc-agent", Subject: "s"}}
	newKey, _ := dpop.NewKey()
	replaceKeep(t, k, idp.issuer, newKey)
	if x, ok := idp.proof("logout", "old-rt"); !ok || x != "" || idp.ended("old-rt") != "logout" {
		t.Fatalf("the replaced unbound session was not logged out without a proof (ended by %q)", idp.ended("old-rt"))
	}
}

// When the new login's record can't be stored (a locked keychain), the
// profile's previous, still valid login keeps its key: the new key that
// went in just before is replaced by the old one again.
func TestFailedReplaceKeepsThePreviousLoginsKey(t *testing.T) {
	keys, _, jkt := replaceSetup(t)
	idp := newEndIdP(t)
	k := &replaceKeeper{prev: boundPrev(idp.issuer, jkt), putErr: errors.New("the keychain is locked")}
	newKey, _ := dpop.NewKey()
	if st := replaceKeep(t, k, idp.issuer, newKey); st.State != ipc.LoginFailed || !strings.Contains(st.Error, "the keychain is locked") {
		t.Fatalf("sign-in state %s (%s), want failed with the store's error", st.State, st.Error)
	}
	got, err := keys.Get(context.Background(), "lab")
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := dpop.Thumbprint(got); g != jkt {
		t.Fatal("a sign-in that could not be kept replaced the kept login's key: that login can not be refreshed any more")
	}
	if e := idp.ended("old-rt"); e != "" {
		t.Fatalf("the kept login's session was ended (%s)", e)
	}
}

// A failed replace where the profile had no key leaves none.
func TestFailedReplaceLeavesNoNewKey(t *testing.T) {
	keys, _, _ := replaceSetup(t)
	keys.Delete(context.Background(), "lab")
	idp := newEndIdP(t)
	k := &replaceKeeper{prev: store.Record{RefreshToken: "old-rt", Issuer: idp.issuer, ClientID: "kc-agent", Subject: "s"}, putErr: errors.New("the keychain is locked")}
	newKey, _ := dpop.NewKey()
	replaceKeep(t, k, idp.issuer, newKey)
	if _, err := keys.Get(context.Background(), "lab"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the key of a login that was not kept stayed in the key store (err %v)", err)
	}
}

// lockedStore holds prev and can't write (a locked keychain).
type lockedStore struct {
	store.Store
	prev store.Record
}

func (s lockedStore) Get(context.Context, string) (store.Record, error) { return s.prev, nil }
func (s lockedStore) Put(context.Context, string, store.Record) error {
	return errors.New("the keychain is locked")
}

// StoreKeeper.Replace runs accept's undo when the record can't be stored.
func TestStoreKeeperUndoesWhenTheRecordCanNotBeStored(t *testing.T) {
	k := StoreKeeper{Store: func(string) (store.Store, error) { return lockedStore{prev: store.Record{RefreshToken: "old-rt"}}, nil }}
	undone := false
	_, err := k.Replace(context.Background(), "lab", store.Record{RefreshToken: "new-rt"}, func(prev store.Record) (func(), error) {
		return func() { undone = true }, nil
	})
	if err == nil || !undone {
		t.Fatalf("Replace: %v; undo ran: %v", err, undone)
	}
}
