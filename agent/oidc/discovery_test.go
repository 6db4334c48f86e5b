package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// discoveryServer serves a discovery document whose endpoints are the
// issuer's own, except those edit changes.
func discoveryServer(t *testing.T, edit func(issuer string, doc map[string]any)) string {
	t.Helper()
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/realms/r/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		base := issuer + "/protocol/openid-connect"
		doc := map[string]any{
			"issuer":                        issuer,
			"authorization_endpoint":        base + "/auth",
			"token_endpoint":                base + "/token",
			"device_authorization_endpoint": base + "/auth/device",
			"end_session_endpoint":          base + "/logout",
			"revocation_endpoint":           base + "/revoke",
			"userinfo_endpoint":             base + "/userinfo",
			"jwks_uri":                      base + "/certs",
		}
		if edit != nil {
			edit(issuer, doc)
		}
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	issuer = srv.URL + "/realms/r"
	return issuer
}

// A discovery document must not send a token anywhere but the issuer's
// own scheme://host:port; the error names the endpoint. The escape hatch
// (allow_foreign_endpoints) accepts another https origin, never plain http
// off this machine.
func TestDiscoveryRefusesForeignEndpoints(t *testing.T) {
	if _, err := discover(context.Background(), discoveryServer(t, nil), "kc-agent", Options{}, NewHTTPClient(Options{}, nil)); err != nil {
		t.Fatalf("the issuer's own endpoints: %v", err)
	}
	for _, tc := range []struct {
		field, url string
		allowed    bool // with allow_foreign_endpoints
	}{
		{"token_endpoint", "https://evil.example.com/token", true},
		{"token_endpoint", "http://127.0.0.1:1/realms/r/protocol/openid-connect/token", true}, // another port
		{"device_authorization_endpoint", "https://evil.example.com/device", true},
		{"revocation_endpoint", "https://evil.example.com/revoke", true},
		{"end_session_endpoint", "https://evil.example.com/logout", true},
		{"userinfo_endpoint", "https://evil.example.com/userinfo", true},
		{"token_endpoint", "http://evil.example.com/token", false}, // cleartext off the machine
		{"token_endpoint", "https:///token", false},                // no host
	} {
		issuer := discoveryServer(t, func(_ string, doc map[string]any) { doc[tc.field] = tc.url })
		_, err := discover(context.Background(), issuer, "kc-agent", Options{}, NewHTTPClient(Options{}, nil))
		if err == nil || KindOf(err) != KindConfig || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s at %s: %v", tc.field, tc.url, err)
		}
		if tc.allowed && HintOf(err) == "" {
			t.Errorf("%s at %s: no hint to the escape hatch", tc.field, tc.url)
		}
		opts := Options{AllowForeignEndpoints: true}
		_, err = discover(context.Background(), issuer, "kc-agent", opts, NewHTTPClient(opts, nil))
		if (err == nil) != tc.allowed {
			t.Errorf("%s at %s with allow_foreign_endpoints: %v", tc.field, tc.url, err)
		}
	}
	// Another scheme on the same host and port is another origin too.
	issuer := discoveryServer(t, func(iss string, doc map[string]any) {
		doc["token_endpoint"] = strings.Replace(iss, "http://", "https://", 1) + "/protocol/openid-connect/token"
	})
	if _, err := discover(context.Background(), issuer, "kc-agent", Options{}, NewHTTPClient(Options{}, nil)); err == nil {
		t.Error("a token endpoint on https while the issuer is http was accepted")
	}
}

// GrantEndpoints names every endpoint discovery gives where a proof would
// let a token copy be used (the agent signs none for them), userinfo and
// the authorization endpoint not among them.
func TestGrantEndpoints(t *testing.T) {
	issuer := discoveryServer(t, func(iss string, doc map[string]any) {
		base := iss + "/protocol/openid-connect"
		doc["introspection_endpoint"] = base + "/token/introspect"
		doc["pushed_authorization_request_endpoint"] = base + "/ext/par/request"
		doc["backchannel_authentication_endpoint"] = base + "/ext/ciba/auth"
		doc["mtls_endpoint_aliases"] = map[string]string{"token_endpoint": iss + "/mtls/token", "userinfo_endpoint": iss + "/mtls/userinfo"}
	})
	c, err := discover(context.Background(), issuer, "kc-agent", Options{}, NewHTTPClient(Options{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.GrantEndpoints(), " ")
	base := issuer + "/protocol/openid-connect"
	for _, want := range []string{"/token", "/revoke", "/logout", "/auth/device", "/ext/par/request", "/token/introspect", "/ext/ciba/auth"} {
		if !strings.Contains(" "+got+" ", " "+base+want+" ") {
			t.Errorf("GrantEndpoints lacks %s: %s", want, got)
		}
	}
	if !strings.Contains(got, issuer+"/mtls/token") || strings.Contains(got, "userinfo") || strings.Contains(" "+got+" ", " "+base+"/auth ") {
		t.Errorf("GrantEndpoints: %s", got)
	}
}
