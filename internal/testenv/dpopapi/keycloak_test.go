//go:build unix

package dpopapi_test

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/dpopapi"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// passwordRealm is a copy of the test realm whose kc-agent client allows
// the password grant (to get tokens without a browser); deleted at the end.
func passwordRealm(t *testing.T, kc *keycloak.Server) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("dpopapi-%d-%s", os.Getpid(), strings.ToLower(t.Name()))
	if err := kc.Admin().CopyRealm(ctx, keycloak.RealmTest, name, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Admin().DeleteRealm(context.Background(), name) })
	if err := kc.Admin().SetClient(ctx, name, "kc-agent", map[string]any{"directAccessGrantsEnabled": true}); err != nil {
		t.Fatal(err)
	}
	return name
}

// passwordToken is alice's access token: bound to key, or Bearer (nil).
func passwordToken(t *testing.T, issuer string, key crypto.Signer) (string, string) {
	t.Helper()
	hc := &http.Client{}
	if key != nil {
		hc.Transport = &dpop.Transport{Key: key}
	}
	resp, err := hc.PostForm(issuer+"/protocol/openid-connect/token", url.Values{"grant_type": {"password"},
		"client_id": {"kc-agent"}, "username": {"alice"}, "password": {"alice-pw"}, "scope": {"openid"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&tr) != nil {
		t.Fatalf("password grant: HTTP %d", resp.StatusCode)
	}
	return tr.AccessToken, tr.TokenType
}

// call sends one request to the API with the given Authorization and
// proof headers ("" leaves one out) and returns the status, the
// WWW-Authenticate and DPoP-Nonce headers.
func call(t *testing.T, method, u, auth, proof string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader("payload"))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Header.Get("DPoP-Nonce")
}

func sign(t *testing.T, key crypto.Signer, p dpop.Proof) string {
	t.Helper()
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	s, err := p.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The API against Keycloak's real bound tokens: one nonce challenge, then
// accepted; every check of RFC 9449 refuses what it should, each under its
// own reason; the Bearer mode takes an unbound token and refuses a bound
// one.
func TestDPoPAPIKeycloakTokens(t *testing.T) {
	kc := testenv.Keycloak(t)
	issuer := kc.Issuer(passwordRealm(t, kc))
	key, _ := dpop.NewKey()
	at, typ := passwordToken(t, issuer, key)
	if !strings.EqualFold(typ, "DPoP") {
		t.Fatalf("Keycloak issued a %s token with a proof, not a DPoP one", typ)
	}
	api, base := dpopapi.Start(t, dpopapi.Options{Issuer: issuer, ClientID: "warehouse-api", ClientSecret: "unused-test-secret"})
	u := base + "/items/1?x=y"
	proof := func(method, target, nonce, token string) string {
		return sign(t, key, dpop.Proof{Method: method, URL: target, Nonce: nonce, AccessToken: token})
	}

	status, wa, nonce := call(t, "GET", u, "DPoP "+at, proof("GET", u, "", at))
	if status != 401 || !strings.Contains(wa, `error="use_dpop_nonce"`) || nonce == "" {
		t.Fatalf("first request: HTTP %d, WWW-Authenticate %q, nonce %t; want the nonce challenge", status, wa, nonce != "")
	}
	good := proof("GET", u, nonce, at)
	if status, wa, _ := call(t, "GET", u, "DPoP "+at, good); status != 200 {
		t.Fatalf("with the nonce: HTTP %d %s", status, wa)
	}
	if status, wa, _ := call(t, "POST", u, "DPoP "+at, proof("POST", u, nonce, at)); status != 200 {
		t.Fatalf("POST with the nonce: HTTP %d %s", status, wa)
	}
	if got := api.Last(); got.User != "alice" || got.Method != "POST" || string(got.Body) != "payload" || got.Query != "x=y" {
		t.Fatalf("the API saw %+v", got)
	}
	other, _ := dpop.NewKey()
	otherAt, _ := passwordToken(t, issuer, nil)
	refusals := []struct {
		reason, auth, proof string
	}{
		{"jti_replay", "DPoP " + at, good},
		{"htm", "DPoP " + at, proof("PUT", u, nonce, at)},
		{"htu", "DPoP " + at, proof("GET", base+"/other", nonce, at)},
		{"iat", "DPoP " + at, sign(t, key, dpop.Proof{Method: "GET", URL: u, Nonce: nonce, AccessToken: at, Now: time.Now().Add(-5 * time.Minute)})},
		{"ath", "DPoP " + at, proof("GET", u, nonce, otherAt)},
		{"token_unbound", "DPoP " + otherAt, proof("GET", u, nonce, otherAt)},
		{"no_dpop_token", "Bearer " + at, proof("GET", u, nonce, at)},
		{"proof_missing", "DPoP " + at, ""},
		{"proof_signature", "DPoP " + at, good[:len(good)-4] + "AAAA"},
		{"token_inactive", "DPoP " + at + "x", proof("GET", u, nonce, at+"x")},
	}
	for _, r := range refusals {
		if status, wa, _ := call(t, "GET", u, r.auth, r.proof); status != 401 || !strings.HasPrefix(wa, "DPoP") {
			t.Errorf("%s: HTTP %d, WWW-Authenticate %q; want 401 DPoP", r.reason, status, wa)
		}
	}
	// Another key: its own challenge, then the token is not bound to it.
	_, _, otherNonce := call(t, "GET", u, "DPoP "+at, sign(t, other, dpop.Proof{Method: "GET", URL: u, AccessToken: at}))
	call(t, "GET", u, "DPoP "+at, sign(t, other, dpop.Proof{Method: "GET", URL: u, AccessToken: at, Nonce: otherNonce}))

	st := api.Stats()
	for _, r := range append(refusals, struct{ reason, auth, proof string }{reason: "jkt_mismatch"}) {
		if st.Refused[r.reason] != 1 {
			t.Errorf("refusals for %s: %d, want 1 (all: %v)", r.reason, st.Refused[r.reason], st.Refused)
		}
	}
	if st.Accepted != 2 || st.Challenges != 2 {
		t.Errorf("accepted %d, challenges %d; want 2 and 2 (one per key)", st.Accepted, st.Challenges)
	}

	bearer, bbase := dpopapi.Start(t, dpopapi.Options{Mode: dpopapi.ModeBearer, Issuer: issuer, ClientID: "warehouse-api", ClientSecret: "unused-test-secret"})
	if status, wa, _ := call(t, "GET", bbase+"/x", "Bearer "+otherAt, ""); status != 200 {
		t.Fatalf("Bearer API, unbound token: HTTP %d %s", status, wa)
	}
	if status, _, _ := call(t, "GET", bbase+"/x", "Bearer "+at, ""); status != 401 || bearer.Stats().Refused["bound_as_bearer"] != 1 {
		t.Fatalf("Bearer API, bound token: HTTP %d, refusals %v", status, bearer.Stats().Refused)
	}
}
