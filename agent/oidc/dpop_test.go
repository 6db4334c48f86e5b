package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kc-agent/kc-agent/agent/dpop"
)

// proofServer is a provider that records the DPoP proof of every request
// to its token, logout and revocation endpoints, and answers each with
// answer(path, proof).
type proofServer struct {
	mu     sync.Mutex
	proofs map[string]string // path -> last DPoP header
}

func (p *proofServer) start(t *testing.T, answer func(w http.ResponseWriter, path, proof string)) string {
	t.Helper()
	p.proofs = map[string]string{}
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/realms/r/.well-known/openid-configuration" {
			base := issuer + "/protocol/openid-connect"
			json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "authorization_endpoint": base + "/auth",
				"token_endpoint": base + "/token", "end_session_endpoint": base + "/logout",
				"revocation_endpoint": base + "/revoke", "jwks_uri": base + "/certs"})
			return
		}
		p.mu.Lock()
		p.proofs[r.URL.Path] = r.Header.Get("DPoP")
		p.mu.Unlock()
		answer(w, r.URL.Path, r.Header.Get("DPoP"))
	}))
	t.Cleanup(srv.Close)
	issuer = srv.URL + "/realms/r"
	return issuer
}

func (p *proofServer) proof(path string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.proofs[path]
}

func testClient(t *testing.T, issuer string) *Client {
	t.Helper()
	c, err := discover(context.Background(), issuer, "kc-agent", Options{}, NewHTTPClient(Options{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// proofClaims reads a proof's htm and htu and its key's thumbprint input.
func proofClaims(t *testing.T, proof string) (htm, htu string) {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("no DPoP proof sent (%d parts)", len(parts))
	}
	data, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ HTM, HTU string }
	json.Unmarshal(data, &c)
	return c.HTM, c.HTU
}

// A client WithDPoP proves every token-endpoint call (refresh, logout,
// revocation) for the endpoint it goes to; the client it came from, which
// discovery caches for every profile of the issuer, proves nothing.
func TestWithDPoPProvesEveryCall(t *testing.T) {
	var ps proofServer
	issuer := ps.start(t, func(w http.ResponseWriter, path, proof string) {
		if strings.HasSuffix(path, "/token") {
			json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "refresh_token": "rt", "token_type": "DPoP", "expires_in": 300})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	plain := testClient(t, issuer)
	key, _ := dpop.NewKey()
	bound := plain.WithDPoP(key)
	if bound.DPoPKey() != key || plain.DPoPKey() != nil {
		t.Fatal("WithDPoP changed the client it copied")
	}
	ctx := context.Background()
	if _, err := plain.Refresh(ctx, "rt", nil); err != nil {
		t.Fatal(err)
	}
	if ps.proof("/realms/r/protocol/openid-connect/token") != "" {
		t.Fatal("the plain client sent a proof")
	}
	if _, err := bound.Refresh(ctx, "rt", nil); err != nil {
		t.Fatal(err)
	}
	if err := bound.Logout(ctx, "rt"); err != nil {
		t.Fatal(err)
	}
	if err := bound.Revoke(ctx, "rt"); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{"token", "logout", "revoke"} {
		htm, htu := proofClaims(t, ps.proof("/realms/r/protocol/openid-connect/"+ep))
		if htm != "POST" || htu != issuer+"/protocol/openid-connect/"+ep {
			t.Errorf("%s: proof for %s %s", ep, htm, htu)
		}
	}
}

// The lockout of issue 29: a realm that requires DPoP answers a login
// without proofs "DPoP proof is missing". That is a configuration error
// whose hint says to sign in with a key (dpop auto or refresh) and names
// the realm's setting, never "sign in again" as if the session had ended.
func TestDPoPMissingIsAConfigError(t *testing.T) {
	for _, code := range []string{"invalid_grant", "invalid_dpop_proof", "invalid_request"} {
		err := classifyTokenError(400, code, "DPoP proof is missing")
		if KindOf(err) != KindConfig || !strings.Contains(HintOf(err), "`dpop: refresh`") || !strings.Contains(HintOf(err), "allow-only-refresh-token-binding") {
			t.Fatalf("%s: got %v (%v), hint %q", code, err, KindOf(err), HintOf(err))
		}
	}
	err := classifyTokenError(400, "invalid_grant", "DPoP proof is missing")
	if KindOf(err) != KindConfig || !strings.Contains(HintOf(err), "dpop-bind-enforcer") || strings.Contains(HintOf(err), "sign in again") || !DPoPMissing(err) {
		t.Fatalf("got %v (%v), hint %q", err, KindOf(err), HintOf(err))
	}
	if strings.Contains(err.Error(), "no longer valid") {
		t.Fatalf("the message says the session ended: %v", err)
	}
	wrong := classifyTokenError(400, "invalid_grant", "DPoP confirmation doesn't match DPoP proof")
	if KindOf(wrong) != KindLoginRequired || !strings.Contains(wrong.Error(), "another DPoP key") {
		t.Fatalf("another key: got %v (%v)", wrong, KindOf(wrong))
	}
	if KindOf(classifyTokenError(400, "invalid_dpop_proof", "DPoP proof is not valid")) != KindConfig {
		t.Fatal("an invalid proof is not a configuration error")
	}
	// A proof dated outside Keycloak's window: the clock, retried once it
	// is right, never "sign in again".
	for _, code := range []string{"invalid_request", "invalid_dpop_proof"} {
		skew := classifyTokenError(400, code, "DPoP proof is not active")
		if KindOf(skew) != KindTransient || !strings.Contains(skew.Error(), "clock") || !strings.Contains(HintOf(skew), "timedatectl") {
			t.Fatalf("%s DPoP proof is not active: got %v (%v), hint %q", code, skew, KindOf(skew), HintOf(skew))
		}
	}
}

// Keycloak's logout endpoint ignores the proof (keycloak/keycloak#50306):
// its "DPoP proof is missing" to a client that sent one is
// ErrLogoutNeedsProof, for logout to handle; to a client without a key it
// is the realm's policy, as for every other call.
func TestLogoutOfABoundSession(t *testing.T) {
	var ps proofServer
	issuer := ps.start(t, func(w http.ResponseWriter, path, proof string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_grant","error_description":"DPoP proof is missing"}`))
	})
	plain := testClient(t, issuer)
	key, _ := dpop.NewKey()
	err := plain.WithDPoP(key).Logout(context.Background(), "rt")
	if !errors.Is(err, ErrLogoutNeedsProof) || KindOf(err) == KindLoginRequired {
		t.Fatalf("bound logout: got %v (%v)", err, KindOf(err))
	}
	if err := plain.Logout(context.Background(), "rt"); KindOf(err) != KindConfig || errors.Is(err, ErrLogoutNeedsProof) {
		t.Fatalf("logout without a key: got %v (%v)", err, KindOf(err))
	}
}

// The probe is one refresh grant with no token and no proof, even from a
// client that holds a key: "DPoP proof is missing" means the realm demands
// proofs of the client; any other refusal means it does not; a server
// error is no answer.
func TestProbeDPoP(t *testing.T) {
	answer := `{"error":"invalid_dpop_proof","error_description":"DPoP proof is missing"}`
	status := http.StatusBadRequest
	var ps proofServer
	issuer := ps.start(t, func(w http.ResponseWriter, path, proof string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(answer))
	})
	key, _ := dpop.NewKey()
	c := testClient(t, issuer).WithDPoP(key)
	if demands, err := c.ProbeDPoP(context.Background()); !demands || err != nil {
		t.Fatalf("enforcing realm: %v %v", demands, err)
	}
	if proof := ps.proof("/realms/r/protocol/openid-connect/token"); proof != "" {
		t.Fatal("the probe sent a proof")
	}
	answer = `{"error":"invalid_grant","error_description":"Invalid refresh token"}`
	if demands, err := c.ProbeDPoP(context.Background()); demands || err != nil {
		t.Fatalf("plain realm: %v %v", demands, err)
	}
	status, answer = http.StatusServiceUnavailable, ``
	if _, err := c.ProbeDPoP(context.Background()); KindOf(err) != KindTransient {
		t.Fatalf("server error: %v", err)
	}
	if c.AdvertisesDPoP() {
		t.Fatal("a discovery without dpop_signing_alg_values_supported advertises DPoP")
	}
}
