package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/dpop"
)

const (
	fakeAccess  = "access-token-that-must-not-leak"
	fakeRefresh = "refresh-token-that-must-not-leak"
)

// accountServer is a provider whose refresh grant answers an access
// token of tokenType, and whose account API answers status; ps records
// each call's DPoP proof.
func accountServer(t *testing.T, ps *proofServer, tokenType string, status int) string {
	t.Helper()
	return ps.start(t, func(w http.ResponseWriter, path, proof string) {
		switch {
		case strings.HasSuffix(path, "/token"):
			json.NewEncoder(w).Encode(map[string]any{"access_token": fakeAccess, "token_type": tokenType, "expires_in": 60, "refresh_token": fakeRefresh})
		case path == "/realms/r/account/applications/kc-agent/consent":
			w.WriteHeader(status)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
}

func TestEndAllSessionsDeletesTheConsent(t *testing.T) {
	var ps proofServer
	issuer := accountServer(t, &ps, "Bearer", http.StatusNoContent)
	if err := testClient(t, issuer).EndAllSessions(context.Background(), fakeRefresh); err != nil {
		t.Fatalf("EndAllSessions: %v", err)
	}
	if ps.proof("/realms/r/account/applications/kc-agent/consent") != "" {
		t.Fatal("a client without a key sent a DPoP proof")
	}
}

// Each refusal of the account API is ErrAccountRefused, says why, and
// names no token.
func TestEndAllSessionsRefused(t *testing.T) {
	for status, want := range map[int]string{401: "no role of the realm's account client", 403: "lacks the manage-account role", 404: "no account API"} {
		var ps proofServer
		issuer := accountServer(t, &ps, "Bearer", status)
		err := testClient(t, issuer).EndAllSessions(context.Background(), fakeRefresh)
		if !errors.Is(err, ErrAccountRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("HTTP %d: %v, want ErrAccountRefused saying %q", status, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), fakeAccess) || strings.Contains(err.Error(), fakeRefresh)) {
			t.Errorf("HTTP %d: the error shows a token", status)
		}
	}
}

// A bound access token goes as "Authorization: DPoP" with a proof for the
// DELETE to the account API that carries the token's hash (ath: the
// transport adds it only to a request whose Authorization says DPoP).
func TestEndAllSessionsBoundToken(t *testing.T) {
	var ps proofServer
	issuer := accountServer(t, &ps, "DPoP", http.StatusNoContent)
	key, _ := dpop.NewKey()
	if err := testClient(t, issuer).WithDPoP(key).EndAllSessions(context.Background(), fakeRefresh); err != nil {
		t.Fatalf("EndAllSessions: %v", err)
	}
	proof := ps.proof("/realms/r/account/applications/kc-agent/consent")
	htm, htu := proofClaims(t, proof)
	if htm != http.MethodDelete || htu != issuer+"/account/applications/kc-agent/consent" {
		t.Fatalf("proof for %s %s", htm, htu)
	}
	data, _ := base64.RawURLEncoding.DecodeString(strings.Split(proof, ".")[1])
	var c struct{ ATH string }
	json.Unmarshal(data, &c)
	sum := sha256.Sum256([]byte(fakeAccess))
	if c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Fatal("the proof has no hash of the access token (ath)")
	}
}
