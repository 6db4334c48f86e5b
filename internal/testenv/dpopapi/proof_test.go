package dpopapi

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/dpop"
)

// jws signs header and claims with key as ES256, as a client with its own
// ideas of a proof would.
func jws(t testing.TB, key crypto.Signer, header, claims map[string]any) string {
	t.Helper()
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	digest := sha256.Sum256([]byte(input))
	der, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var sig struct{ R, S *big.Int }
	asn1.Unmarshal(der, &sig)
	raw := make([]byte, 64)
	sig.R.FillBytes(raw[:32])
	sig.S.FillBytes(raw[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(raw)
}

func TestParseProof(t *testing.T) {
	key, _ := dpop.NewKey()
	jwk, _ := dpop.PublicJWK(key)
	good, err := dpop.Proof{Method: "POST", URL: "https://api.example/x?q=1", Nonce: "n1", AccessToken: "at", Now: time.Unix(1000, 0)}.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseProof(good)
	if err != nil {
		t.Fatalf("a proof of agent/dpop: %v", err)
	}
	want, _ := dpop.Thumbprint(key)
	if p.Thumbprint != want || p.HTM != "POST" || p.HTU != "https://api.example/x" || p.IAT != 1000 || p.Nonce != "n1" || p.ATH != ATH("at") {
		t.Fatalf("parsed %+v", p)
	}

	hdr := func(typ, alg string, k any) map[string]any { return map[string]any{"typ": typ, "alg": alg, "jwk": k} }
	claims := map[string]any{"jti": "j", "htm": "GET", "htu": "https://api.example/x", "iat": 1000}
	private := map[string]any{"kty": "EC", "crv": "P-256", "x": jwk.X, "y": jwk.Y, "d": "AAAA"}
	rsa := map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB"}
	other, _ := dpop.NewKey()
	otherJWK, _ := dpop.PublicJWK(other)
	cases := map[string]string{
		"typ":         jws(t, key, hdr("JWT", "ES256", jwk), claims),
		"alg":         jws(t, key, hdr("dpop+jwt", "none", jwk), claims),
		"jwk":         jws(t, key, hdr("dpop+jwt", "ES256", nil), claims),
		"jwk ":        jws(t, key, hdr("dpop+jwt", "ES256", private), claims),
		"jwk  ":       jws(t, key, hdr("dpop+jwt", "ES256", rsa), claims),
		"signature":   jws(t, key, hdr("dpop+jwt", "ES256", otherJWK), claims),
		"malformed":   jws(t, key, hdr("dpop+jwt", "ES256", jwk), map[string]any{"htm": "GET", "htu": "https://a/", "iat": 1}),
		"malformed ":  "a.b",
		"signature ":  strings.TrimSuffix(good, good[len(good)-2:]),
		"malformed  ": strings.Repeat("a", MaxProof+1),
	}
	for want, proof := range cases {
		_, err := ParseProof(proof)
		if err == nil || Reason(err) != strings.TrimSpace(want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
}

func FuzzParseProof(f *testing.F) {
	key, _ := dpop.NewKey()
	good, _ := dpop.Proof{Method: "GET", URL: "https://api.example/", AccessToken: "at", Now: time.Unix(1000, 0)}.Sign(key)
	f.Add(good)
	f.Add("a.b.c")
	f.Add("")
	parts := strings.Split(good, ".")
	f.Add(parts[0] + ".e30." + parts[2])
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProof(s)
		if err == nil && (p.JTI == "" || p.HTM == "" || p.HTU == "" || p.Thumbprint == "") {
			t.Fatalf("accepted a proof without its claims: %+v", p)
		}
		if err != nil && Reason(err) == err.Error() {
			t.Fatalf("error without a reason: %v", err)
		}
	})
}
