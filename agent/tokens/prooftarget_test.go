package tokens

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
)

// The agent signs no proof for the provider's own grant endpoints: at
// Keycloak's token endpoint a proof of the login's key (its ath unread)
// refreshes any stolen copy of the offline token. Every spelling a server
// could take for the same endpoint is refused, on any host (Keycloak
// answers under other names too), before the key is even read; the
// refusal is forbidden, with a hint, and holds no token.
func TestProofRefusesTheProvidersGrantEndpoints(t *testing.T) {
	h, keys, _ := proofHarness(t)
	for _, u := range []string{
		issuer + "/protocol/openid-connect/token",
		issuer + "/protocol/openid-connect/revoke",
		issuer + "/protocol/openid-connect/logout",
		issuer + "/protocol/openid-connect/auth/device",
		issuer + "/protocol/openid-connect/token/introspect",
		issuer + "/protocol/openid-connect/ext/par/request",
		issuer + "/protocol/openid-connect/ext/ciba/auth",
		issuer + "/protocol/openid-connect/token?grant_type=refresh_token",
		"HTTPS://SSO.EXAMPLE.COM:443/realms/r/protocol/openid-connect/token",
		"https://sso.example.com/realms/r/PROTOCOL/OpenID-Connect/Token",
		"https://sso.example.com/realms/r/protocol/openid-connect/%74oken",
		"https://sso.example.com/realms/r/protocol%2Fopenid-connect%2Ftoken",
		"https://sso.example.com/realms/r//protocol//openid-connect//token",
		"https://sso.example.com/realms/r/protocol;x=1/openid-connect/token;y=2",
		"https://sso.example.com/realms/r/x/../protocol/./openid-connect/token",
		"https://sso.example.com/realms/r/protocol/x%2F..%2Fopenid-connect/token",
		"https://keycloak.internal:8443/auth/realms/r/protocol/openid-connect/token",
		"http://127.0.0.1:8080/realms/other/protocol/openid-connect/token",
		issuer + "/protocol/openid-connect/userinfo/../token",
	} {
		got, err := h.proof(t, "POST", u, "")
		var te *Error
		if got.Proof != "" || !errors.As(err, &te) || te.Code != CodeForbidden || te.Hint == "" {
			t.Errorf("POST %s: proof %t, err %v; want a forbidden refusal", u, got.Proof != "", err)
			continue
		}
		if strings.Contains(err.Error(), "bound-at") || strings.Contains(te.Hint, "bound-at") {
			t.Errorf("the refusal holds the access token: %v", err)
		}
	}
	if n := keys.gets.Load(); n != 0 {
		t.Errorf("the key was read %d times for refused proofs", n)
	}
}

// Userinfo checks ath, so a proof for it is of no use without this very
// access token; APIs, Keycloak's own account and admin APIs, and paths
// that merely look alike are proved as before.
func TestProofSignsForAPIsAndUserinfo(t *testing.T) {
	h, _, _ := proofHarness(t)
	for _, u := range []string{
		issuer + "/protocol/openid-connect/userinfo",
		"https://sso.example.com:443/realms/r/protocol/openid-connect/userinfo",
		issuer + "/account",
		"https://sso.example.com/admin/realms/r/users",
		"https://api.example/protocol/saml",
		"https://api.example/openid-connect/token",
		"https://api.example/docs/protocol-openid-connect/token",
	} {
		if got, err := h.proof(t, "GET", u, ""); err != nil || got.Proof == "" {
			t.Errorf("GET %s: proof %t, err %v", u, got.Proof != "", err)
		}
	}
}

// endpointIdP is a provider whose discovery names endpoints of its own
// choosing (not Keycloak's paths).
type endpointIdP struct {
	boundIdP
	endpoints []string
}

func (e *endpointIdP) GrantEndpoints() []string { return e.endpoints }

// For any provider, the endpoints its discovery names are refused however
// the URL spells them; while discovery fails, so is every URL on the
// issuer's host (unavailable: try again), and other hosts are proved.
func TestProofRefusesDiscoveredEndpoints(t *testing.T) {
	h, _, _ := proofHarness(t)
	idp := &endpointIdP{endpoints: []string{"https://idp.example/oauth2/token", "https://idp.example/oauth2/revoke"}}
	h.m.NewClient = func(context.Context, config.Profile) (Refresher, error) { return idp, nil }
	for _, u := range []string{"https://IDP.example:443/oauth2/token", "https://idp.example/oauth2/./revoke", "https://idp.example/oauth2/%74oken"} {
		var te *Error
		if got, err := h.proof(t, "POST", u, ""); got.Proof != "" || !errors.As(err, &te) || te.Code != CodeForbidden {
			t.Errorf("POST %s: proof %t, err %v", u, got.Proof != "", err)
		}
	}
	if got, err := h.proof(t, "GET", "https://idp.example/oauth2/userinfo", ""); err != nil || got.Proof == "" {
		t.Errorf("userinfo of another provider: %v", err)
	}
	h.m.NewClient = func(context.Context, config.Profile) (Refresher, error) {
		return nil, errors.New("discovery failed")
	}
	var te *Error
	if _, err := h.proof(t, "GET", "https://sso.example.com/realms/r/account", ""); !errors.As(err, &te) || te.Code != CodeUnavailable {
		t.Errorf("a URL on the issuer's host while discovery fails: %v", err)
	}
	if got, err := h.proof(t, "GET", "https://api.example/items", ""); err != nil || got.Proof == "" {
		t.Errorf("an API while discovery fails: %v", err)
	}
}

// A URL no proof can name (a host that is not ASCII: its IDNA form is the
// caller's to give) is bad_request, never "try again".
func TestProofOfAnUnsignableURL(t *testing.T) {
	h, _, _ := proofHarness(t)
	var te *Error
	if _, err := h.proof(t, "GET", "https://bücher.example/x", ""); !errors.As(err, &te) || te.Code != CodeBadRequest || !strings.Contains(te.Msg, "IDNA") {
		t.Fatalf("a non-ASCII host: %v", err)
	}
}
