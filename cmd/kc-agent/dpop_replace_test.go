//go:build unix

package main

import (
	"errors"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// A bound login replaced by a new one: its session is ended at Keycloak
// (revoked: Keycloak's logout can't end a bound session,
// keycloak/keycloak#50306) while the new login's lives on. Replaced by an
// unbound one (the profile turned dpop off), the new login is kept
// unbound and refreshes without proofs, and the replaced login's key is
// deleted.
func TestDPoPReplacedBoundLoginIsEnded(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := dpopRealm(t, kc, keycloak.RealmTest, false)
	issuer := kc.Issuer(realm)
	e.writeProfile(config.Profile{Issuer: issuer, DPoP: config.DPoPOn})
	e.login(realm, "carol", "carol-pw")
	first, firstKey := e.checkBound()

	e.login(realm, "carol", "carol-pw")
	second, secondKey := e.checkBound()
	if status, _ := refreshAt(t, issuer, first.RefreshToken, firstKey); status != 400 {
		t.Fatalf("the replaced bound session, with its key: HTTP %d, want it ended (400)", status)
	}
	if status, _ := refreshAt(t, issuer, second.RefreshToken, secondKey); status != 200 {
		t.Fatalf("the new bound login: HTTP %d", status)
	}

	e.writeProfile(config.Profile{Issuer: issuer, DPoP: config.DPoPOff})
	e.login(realm, "carol", "carol-pw")
	rec, err := e.stored()
	if err != nil || rec.KeyThumbprint != "" || boundTo(t, rec.RefreshToken) != "" {
		t.Fatalf("the new login is not stored unbound (%v)", err)
	}
	if _, err := e.storedKey(); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the replaced bound login's key is still in the key store (%v)", err)
	}
	if status, _ := refreshAt(t, issuer, second.RefreshToken, secondKey); status != 400 {
		t.Fatalf("the bound session replaced by an unbound login, with its key: HTTP %d, want it ended (400)", status)
	}
	if status, _ := refreshAt(t, issuer, rec.RefreshToken, nil); status != 200 {
		t.Fatalf("the new unbound login's refresh: HTTP %d", status)
	}
}
