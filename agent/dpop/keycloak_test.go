//go:build unix

package dpop_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// tokenAnswer is the token endpoint's answer, as far as the test reads it.
type tokenAnswer struct {
	TokenType    string `json:"token_type"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

func post(t *testing.T, hc *http.Client, endpoint string, form url.Values) (int, tokenAnswer) {
	t.Helper()
	resp, err := hc.PostForm(endpoint, form)
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var a tokenAnswer
	if len(data) > 0 {
		if err := json.Unmarshal(data, &a); err != nil {
			t.Fatalf("POST %s: %d, not JSON", endpoint, resp.StatusCode)
		}
	}
	return resp.StatusCode, a
}

// claim reads a claim of a JWT's payload without checking it (the test
// looks at what Keycloak bound the token to).
func claim(t *testing.T, jwt string, name string) json.RawMessage {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatal("the token is not a JWT")
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal("the token's payload is not base64url")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal("the token's payload is not JSON")
	}
	return m[name]
}

// deviceLogin signs user in through the device grant with every token
// request proven by key, as the agent does, and returns the answer.
func deviceLogin(t *testing.T, kc *keycloak.Server, realm, user string, hc *http.Client) tokenAnswer {
	t.Helper()
	issuer := kc.Issuer(realm)
	vb := make([]byte, 32)
	rand.Read(vb)
	verifier := base64.RawURLEncoding.EncodeToString(vb)
	sum := sha256.Sum256([]byte(verifier))
	resp, err := hc.PostForm(issuer+"/protocol/openid-connect/auth/device", url.Values{
		"client_id": {"kc-agent"}, "scope": {"openid offline_access"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var da struct {
		DeviceCode string `json:"device_code"`
		Complete   string `json:"verification_uri_complete"`
	}
	json.NewDecoder(resp.Body).Decode(&da)
	resp.Body.Close()
	if da.DeviceCode == "" {
		t.Fatalf("device authorization: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := keycloak.NewFormBrowser(user, user+"-pw").Visit(ctx, da.Complete); err != nil {
		t.Fatalf("approving the device code: %v", err)
	}
	for ctx.Err() == nil {
		status, a := post(t, hc, issuer+"/protocol/openid-connect/token", url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {"kc-agent"},
			"device_code": {da.DeviceCode}, "code_verifier": {verifier},
		})
		switch {
		case status == 200:
			return a
		case a.Error == "authorization_pending" || a.Error == "slow_down":
			time.Sleep(1500 * time.Millisecond)
		default:
			t.Fatalf("device token: %d %s: %s", status, a.Error, a.Description)
		}
	}
	t.Fatal("the device grant did not complete")
	return tokenAnswer{}
}

// A login made with proofs is bound to the key: Keycloak puts the key's
// thumbprint in the offline token, and a copy of the token refreshes
// neither without a proof nor with another key's; with the key it does,
// with Revoke Refresh Token on.
func TestKeycloakBindsTheOfflineToken(t *testing.T) {
	kc := testenv.Keycloak(t)
	realm := keycloak.RealmRotation
	key, _ := dpop.NewKey()
	bound := &http.Client{Transport: &dpop.Transport{Key: key}, Timeout: 30 * time.Second}
	a := deviceLogin(t, kc, realm, "alice", bound)
	// Only this test signs alice in on this realm; the session Keycloak
	// can't end by logout (below) ends here.
	t.Cleanup(func() { kc.Admin().RevokeOfflineSessions(context.Background(), realm, "alice") })
	jkt, _ := dpop.Thumbprint(key)
	var cnf struct {
		JKT string `json:"jkt"`
	}
	json.Unmarshal(claim(t, a.RefreshToken, "cnf"), &cnf)
	if typ := string(claim(t, a.RefreshToken, "typ")); typ != `"Offline"` || cnf.JKT != jkt {
		t.Fatalf("the offline token: typ %s, cnf.jkt %q, want the key's %q", typ, cnf.JKT, jkt)
	}
	if !strings.EqualFold(a.TokenType, "DPoP") {
		t.Errorf("token_type %q, want DPoP (the access token is bound too by default)", a.TokenType)
	}
	tokenURL := kc.Issuer(realm) + "/protocol/openid-connect/token"
	refresh := func(hc *http.Client, rt string) (int, tokenAnswer) {
		return post(t, hc, tokenURL, url.Values{"grant_type": {"refresh_token"}, "client_id": {"kc-agent"}, "refresh_token": {rt}})
	}
	// The thief: the offline token, no key.
	if status, e := refresh(http.DefaultClient, a.RefreshToken); status != 400 || e.Error != "invalid_grant" {
		t.Fatalf("a refresh without a proof: %d %s (%s)", status, e.Error, e.Description)
	}
	other, _ := dpop.NewKey()
	if status, e := refresh(&http.Client{Transport: &dpop.Transport{Key: other}}, a.RefreshToken); status != 400 || e.Error != "invalid_grant" {
		t.Fatalf("a refresh with another key's proof: %d %s (%s)", status, e.Error, e.Description)
	}
	// The agent: the same token, its key. The thief's attempts did not end
	// the session, and the rotated token stays bound.
	status, b := refresh(bound, a.RefreshToken)
	if status != 200 {
		t.Fatalf("the key's own refresh: %d %s (%s)", status, b.Error, b.Description)
	}
	json.Unmarshal(claim(t, b.RefreshToken, "cnf"), &cnf)
	if cnf.JKT != jkt {
		t.Fatalf("the rotated offline token is bound to %q, want %q", cnf.JKT, jkt)
	}
	// Logout with a proof: Keycloak 26.7 does not read the DPoP header on
	// its logout endpoint (keycloak/keycloak#50306) and answers "DPoP proof
	// is missing" for every bound refresh token. Whatever logout can't end
	// at Keycloak, forgetting the key ends for every copy of the token.
	resp, err := bound.PostForm(kc.Issuer(realm)+"/protocol/openid-connect/logout", url.Values{"client_id": {"kc-agent"}, "refresh_token": {b.RefreshToken}})
	if err != nil {
		t.Fatal(err)
	}
	var e tokenAnswer
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	switch {
	case resp.StatusCode == 204:
		if status, e := refresh(bound, b.RefreshToken); status != 400 {
			t.Fatalf("a refresh after logout: %d %s", status, e.Error)
		}
	case resp.StatusCode == 400 && e.Description == "DPoP proof is missing":
		t.Logf("logout of a bound session: Keycloak's known bug #50306 (%s)", e.Description)
	default:
		t.Fatalf("logout with a proof: %d %s (%s)", resp.StatusCode, e.Error, e.Description)
	}
}
