package tokens

import (
	"context"
	"crypto"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv/dpopapi"
)

// countingKeys is a key store that counts reads (a keychain round trip
// each, in real life).
type countingKeys struct {
	store.KeyStore
	gets atomic.Int32
}

func (c *countingKeys) Get(ctx context.Context, p string) (crypto.Signer, error) {
	c.gets.Add(1)
	return c.KeyStore.Get(ctx, p)
}

// boundIdP issues DPoP-bound access tokens, as Keycloak does under dpop: on.
type boundIdP struct{ n atomic.Int32 }

func (b *boundIdP) Refresh(ctx context.Context, rt string, scopes []string) (*oidc.Token, error) {
	n := b.n.Add(1)
	return &oidc.Token{AccessToken: "bound-at-" + string(rune('0'+n)), RefreshToken: rt, TokenType: "DPoP", ExpiresIn: time.Hour}, nil
}

// boundHarness: the default profile's login is bound to a key in a
// counting store; the provider issues DPoP tokens.
func boundHarness(t *testing.T) (*harness, *countingKeys, crypto.Signer) {
	h := newHarness(t, time.Hour)
	keys := &countingKeys{KeyStore: &store.FileKeys{Dir: t.TempDir()}}
	old := KeysFor
	KeysFor = func(config.Profile) (store.KeyStore, error) { return keys, nil }
	t.Cleanup(func() { KeysFor = old })
	key, _ := dpop.NewKey()
	if err := keys.Put(context.Background(), "default", key); err != nil {
		t.Fatal(err)
	}
	rec, _ := h.st.Get(context.Background(), "default")
	BindRecord(key, &rec)
	h.st.Put(context.Background(), "default", rec)
	h.m.NewClient = func(context.Context, config.Profile) (Refresher, error) { return &boundIdP{}, nil }
	h.m.Reload("default")
	return h, keys, key
}

func (h *harness) proof(t *testing.T, method, url, nonce string) (Proved, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.m.Proof(ctx, ProofRequest{Request: Request{Profile: "default"}, Method: method, URL: url, Nonce: nonce})
}

// A bound token comes with a proof of the login's key for the request
// asked (htm, htu without the query, the nonce, ath of this very token);
// the key is read from its store once, and again only after a reload or
// a logout drops it.
func TestProofSignsWithTheCachedLoginKey(t *testing.T) {
	h, keys, key := boundHarness(t)
	got, err := h.proof(t, "POST", "https://api.example/items?q=1", "n-1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Bound() || got.Proof == "" {
		t.Fatalf("a DPoP token without a proof: %v", got)
	}
	p, err := dpopapi.ParseProof(got.Proof)
	if err != nil {
		t.Fatalf("the proof does not verify: %v", err)
	}
	jkt, _ := dpop.Thumbprint(key)
	if p.Thumbprint != jkt || p.HTM != "POST" || p.HTU != "https://api.example/items" || p.Nonce != "n-1" || p.ATH != dpopapi.ATH(got.Token) {
		t.Fatalf("proof claims %+v, token %s", p, got.Token)
	}
	second, _ := h.proof(t, "GET", "https://api.example/", "")
	if q, _ := dpopapi.ParseProof(second.Proof); q == nil || q.JTI == p.JTI {
		t.Fatal("two proofs share a jti")
	}
	if n := keys.gets.Load(); n != 1 {
		t.Fatalf("the key was read %d times for two proofs, want 1", n)
	}
	h.m.Reload("default")
	if _, err := h.proof(t, "GET", "https://api.example/", ""); err != nil {
		t.Fatal(err)
	}
	if n := keys.gets.Load(); n != 2 {
		t.Fatalf("after a reload the key was read %d times in all, want 2 (the cached one dropped)", n)
	}
	if _, err := h.m.Remove(context.Background(), "default"); err != nil {
		t.Fatal(err)
	}
	h.m.pr(t).mu.Lock()
	defer h.m.pr(t).mu.Unlock()
	if h.m.pr(t).key.entry.Load() != nil {
		t.Fatal("logout left the key in memory")
	}
}

func (m *Manager) pr(t *testing.T) *profile {
	p, err := m.profile("default")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A Bearer token (an unbound login) comes without a proof; a bound login
// whose key is gone is login_required with the way out.
func TestProofBearerAndMissingKey(t *testing.T) {
	h := newHarness(t, time.Hour)
	got, err := h.proof(t, "GET", "https://api.example/", "")
	if err != nil || got.Bound() || got.Proof != "" || got.Type != "Bearer" {
		t.Fatalf("an unbound login: %v, proof %t, err %v", got, got.Proof != "", err)
	}
	h, keys, _ := boundHarness(t)
	keys.Delete(context.Background(), "default")
	_, err = h.proof(t, "GET", "https://api.example/", "")
	var te *Error
	if !errors.As(err, &te) || te.Code != CodeLoginRequired || te.Hint == "" {
		t.Fatalf("a bound login without its key: %v", err)
	}
}
