package oidc

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestClassifyTokenError(t *testing.T) {
	cases := []struct {
		status     int
		code, desc string
		want       Kind
	}{
		{400, "invalid_grant", "Offline user session not found", KindLoginRequired},
		{400, "invalid_grant", "Token is not active", KindLoginRequired},
		{400, "invalid_grant", "Stale token", KindLoginRequired},
		{400, "invalid_grant", "Maximum allowed refresh token reuse exceeded", KindLoginRequired},
		{400, "invalid_grant", "Session doesn't have required client", KindLoginRequired},
		{400, "invalid_grant", "something new", KindLoginRequired},
		{400, "invalid_grant", "Invalid token issuer. Expected 'http://localhost:8080/realms/x'", KindConfig},
		{400, "invalid_client", "", KindConfig},
		{400, "invalid_scope", "", KindScope},
		{400, "not_allowed", "Offline tokens not allowed for the user or client", KindConfig},
		{400, "access_denied", "", KindDenied},
		{400, "expired_token", "", KindDenied},
		{503, "", "", KindTransient},
		{502, "", "", KindTransient},
		{429, "", "", KindTransient},
		{401, "unauthorized", "", KindOther},
	}
	for _, tc := range cases {
		err := classifyTokenError(tc.status, tc.code, tc.desc)
		if KindOf(err) != tc.want {
			t.Errorf("%d %s %q: got %v, want %v", tc.status, tc.code, tc.desc, KindOf(err), tc.want)
		}
		if tc.want != KindOther && HintOf(err) == "" {
			t.Errorf("%d %s: no hint", tc.status, tc.code)
		}
	}
}

func jwt(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(payload)) + ".sig"
}

func TestCheckOffline(t *testing.T) {
	ok := &Token{RefreshToken: jwt(`{"typ":"Offline"}`), Scope: "openid offline_access profile"}
	if err := checkOffline(ok); err != nil {
		t.Fatalf("offline token refused: %v", err)
	}
	opaque := &Token{RefreshToken: "opaque-token", Scope: "openid offline_access"}
	if err := checkOffline(opaque); err != nil {
		t.Fatalf("opaque offline token refused: %v", err)
	}
	for name, tok := range map[string]*Token{
		"online refresh token": {RefreshToken: jwt(`{"typ":"Refresh"}`), Scope: "openid offline_access"},
		"scope not granted":    {RefreshToken: jwt(`{"typ":"Offline"}`), Scope: "openid profile"},
		"no refresh token":     {Scope: "openid offline_access"},
	} {
		err := checkOffline(tok)
		if err == nil || !strings.Contains(HintOf(err), "offline_access") {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestCallbackChecksStateAndIssuer(t *testing.T) {
	c := &Client{Issuer: "https://sso.example.com/realms/r"}
	results := make(chan callbackResult, 1)
	h := c.callbackHandler("the-state", results)
	get := func(q string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/callback?"+q, nil))
		return rec.Code
	}
	if code := get("state=wrong&code=x"); code != http.StatusBadRequest || len(results) != 0 {
		t.Fatalf("wrong state: HTTP %d, %d results", code, len(results))
	}
	if code := get("code=x"); code != http.StatusBadRequest || len(results) != 0 {
		t.Fatalf("missing state accepted")
	}
	if code := get("state=the-state&code=x&iss=https://evil.example.com/realms/r"); code != http.StatusBadRequest {
		t.Fatalf("foreign iss: HTTP %d", code)
	}
	if r := <-results; r.err == nil || KindOf(r.err) != KindConfig {
		t.Fatalf("foreign iss result: %v", r.err)
	}
	if code := get("state=the-state&error=access_denied"); code != http.StatusForbidden {
		t.Fatalf("error callback: HTTP %d", code)
	}
	if r := <-results; KindOf(r.err) != KindDenied {
		t.Fatalf("denied result: %v", r.err)
	}
	if code := get("state=the-state&code=abc&iss=https://sso.example.com/realms/r"); code != http.StatusOK {
		t.Fatalf("good callback: HTTP %d", code)
	}
	if r := <-results; r.err != nil || r.code != "abc" {
		t.Fatalf("good result: %+v", r)
	}
}

func TestTokenStringHidesSecrets(t *testing.T) {
	tok := &Token{AccessToken: "at-secret", RefreshToken: "rt-secret", IDToken: "id-secret"}
	s := tok.String()
	if strings.Contains(s, "secret") {
		t.Fatalf("Token.String leaks: %s", s)
	}
}
