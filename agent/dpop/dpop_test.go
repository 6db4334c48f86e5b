package dpop

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// verify checks a proof as a resource server would (RFC 9449 4.3) and
// returns its claims; it is the test's independent reading of the format.
func verify(t *testing.T, proof, method, url string) (claims, JWK) {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("a proof has %d parts", len(parts))
	}
	dec := func(s string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("not base64url: %v", err)
		}
		return b
	}
	var h header
	if err := json.Unmarshal(dec(parts[0]), &h); err != nil || h.Typ != "dpop+jwt" || h.Alg != "ES256" || h.JWK.Kty != "EC" || h.JWK.Crv != "P-256" {
		t.Fatalf("header %+v (%v)", h, err)
	}
	var c claims
	if err := json.Unmarshal(dec(parts[1]), &c); err != nil {
		t.Fatal(err)
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(dec(h.JWK.X)), Y: new(big.Int).SetBytes(dec(h.JWK.Y))}
	sig := dec(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("the proof's signature does not verify with the key in its header")
	}
	if c.HTM != method || c.HTU != url || c.JTI == "" {
		t.Fatalf("claims %+v, want %s %s", c, method, url)
	}
	return c, h.JWK
}

func TestProofSignsTheRequest(t *testing.T) {
	key, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	p, err := Proof{Method: "post", URL: "https://sso.example.com/realms/r/protocol/openid-connect/token?x=1#f", Now: now, Nonce: "n1", AccessToken: "at"}.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	c, jwk := verify(t, p, "POST", "https://sso.example.com/realms/r/protocol/openid-connect/token")
	sum := sha256.Sum256([]byte("at"))
	if c.IAT != now.Unix() || c.Nonce != "n1" || c.ATH != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Fatalf("claims %+v", c)
	}
	// RFC 7638: the thumbprint is over the required members, sorted, no
	// whitespace; computed here without the JWK type.
	canon := fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, jwk.X, jwk.Y)
	want := sha256.Sum256([]byte(canon))
	if got, _ := Thumbprint(key); got != base64.RawURLEncoding.EncodeToString(want[:]) {
		t.Fatalf("thumbprint %s", got)
	}
	q, _ := Proof{Method: "POST", URL: "https://a.example/t", Now: now}.Sign(key)
	if c2, _ := verify(t, q, "POST", "https://a.example/t"); c2.JTI == c.JTI || c2.Nonce != "" || c2.ATH != "" {
		t.Fatalf("a second proof: %+v", c2)
	}
}

func TestKeyRoundTrip(t *testing.T) {
	key, _ := NewKey()
	s, err := MarshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseKey(s)
	if err != nil || !back.Equal(key) {
		t.Fatalf("ParseKey: %v", err)
	}
	for _, bad := range []string{"", "!!", base64.RawURLEncoding.EncodeToString([]byte("not a key"))} {
		if _, err := ParseKey(bad); err == nil || strings.Contains(err.Error(), bad) && bad != "" {
			t.Errorf("ParseKey(%q): %v", bad, err)
		}
	}
}

// A server that asks for a nonce gets the same request again, once, with
// the nonce in a fresh proof; the nonce is then used from the start.
func TestTransportAnswersNonceChallenge(t *testing.T) {
	key, _ := NewKey()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c, _ := verify(t, r.Header.Get("DPoP"), "POST", "http://"+r.Host+"/token")
		mu.Lock()
		seen = append(seen, c.JTI)
		mu.Unlock()
		if string(body) != "grant_type=refresh_token" {
			t.Errorf("body %q", body)
		}
		if c.Nonce != "nonce-1" {
			w.Header().Set("DPoP-Nonce", "nonce-1")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"use_dpop_nonce","error_description":"need a nonce"}`)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	hc := &http.Client{Transport: &Transport{Key: key}}
	for i := range 2 {
		resp, err := hc.Post(srv.URL+"/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("call %d: %d", i, resp.StatusCode)
		}
	}
	if len(seen) != 3 || seen[0] == seen[1] || seen[1] == seen[2] {
		t.Fatalf("the server saw %d proofs (want 3: challenge, retry, then the kept nonce), jtis %v", len(seen), seen)
	}
}

// A 400 that is not a nonce challenge reaches the caller with its body.
func TestTransportPassesOtherErrors(t *testing.T) {
	key, _ := NewKey()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("DPoP-Nonce", "n")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant"}`)
	}))
	defer srv.Close()
	resp, err := (&http.Client{Transport: &Transport{Key: key}}).Post(srv.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || string(body) != `{"error":"invalid_grant"}` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func FuzzParseKey(f *testing.F) {
	key, _ := NewKey()
	s, _ := MarshalKey(key)
	f.Add(s)
	f.Add("")
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err == nil && k == nil {
			t.Fatal("no key and no error")
		}
	})
}
