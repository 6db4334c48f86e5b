//go:build unix

package dpop_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// Keycloak takes a proof's iat from 25 s before its clock to 15 s after,
// sends no Date header and no nonce: a proof dated by a clock a minute
// fast is refused (invalid_request "DPoP proof is not active"), and
// nothing in the refusal tells the time. Its token answers do (the access
// token's iat): a clock that drifts after sign-in, here by 10 s between
// requests up to a minute fast, keeps refreshing, each proof dated by
// Keycloak's clock as its last answer showed it.
func TestKeycloakProofsFollowItsClock(t *testing.T) {
	kc := testenv.Keycloak(t)
	realm := fmt.Sprintf("dpop-clock-%d", os.Getpid())
	ctx := context.Background()
	if err := kc.Admin().CopyRealm(ctx, keycloak.RealmTest, realm, nil); err != nil {
		t.Fatalf("creating realm %s: %v", realm, err)
	}
	t.Cleanup(func() { kc.Admin().DeleteRealm(context.Background(), realm) })
	key, _ := dpop.NewKey()
	var skew atomic.Int64
	skew.Store(int64(10 * time.Second))
	clocks := &dpop.Clocks{}
	tr := &dpop.Transport{Key: key, Clocks: clocks, Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	a := deviceLogin(t, kc, realm, "alice", hc)
	tokenURL := kc.Issuer(realm) + "/protocol/openid-connect/token"
	origin := kc.Issuer(realm)[:len(kc.Issuer(realm))-len("/realms/"+realm)]
	refresh := func(hc *http.Client, rt string) (int, tokenAnswer) {
		return post(t, hc, tokenURL, url.Values{"grant_type": {"refresh_token"}, "client_id": {"kc-agent"}, "refresh_token": {rt}})
	}

	// Another transport on the same machine, a minute fast, that has not
	// seen Keycloak's clock: refused, and no answer to read the time from.
	fresh := &http.Client{Transport: &dpop.Transport{Key: key, Clocks: &dpop.Clocks{}, Now: func() time.Time { return time.Now().Add(time.Minute) }}}
	status, e := refresh(fresh, a.RefreshToken)
	if status != 400 || (e.Error != "invalid_dpop_proof" && e.Error != "invalid_request") {
		t.Fatalf("a proof dated a minute ahead: %d %s (%s); want Keycloak's refusal", status, e.Error, e.Description)
	}
	t.Logf("Keycloak's answer to a proof dated a minute ahead: %d %s %q", status, e.Error, e.Description)

	rt := a.RefreshToken
	for s := 20; s <= 60; s += 10 {
		skew.Store(int64(time.Duration(s) * time.Second))
		status, b := refresh(hc, rt)
		if status != 200 {
			t.Fatalf("a refresh with the local clock %d s fast: %d %s (%s); measured offset %v", s, status, b.Error, b.Description, clocks.Offset(origin))
		}
		rt = b.RefreshToken
	}
	if off := clocks.Offset(origin); off > -58*time.Second || off < -62*time.Second {
		t.Fatalf("the measured offset of Keycloak's clock is %v, want about -60s", off)
	}
}
