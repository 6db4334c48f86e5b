package tokens

import (
	"context"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
)

func fileKeys(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	old := KeysFor
	KeysFor = func(config.Profile) (store.KeyStore, error) { return &store.FileKeys{Dir: dir}, nil }
	t.Cleanup(func() { KeysFor = old })
}

// A login is made with a fresh key under dpop: refresh and on, and under
// auto only where the realm demands proofs (no client: no probe, no key);
// the key is kept
// and named in the record; a bound record refreshes only with that key:
// a missing or another key is login_required that says why, never a loop
// of refresh attempts.
func TestLoginKeyLifecycle(t *testing.T) {
	fileKeys(t)
	ctx := context.Background()
	off := config.Profile{Issuer: "https://x/realms/r"}
	off.DPoP = config.DPoPOff
	if k, err := NewLoginKey(ctx, off, nil); k != nil || err != nil {
		t.Fatalf("dpop off made a key: %v", err)
	}
	auto := config.Profile{Issuer: off.Issuer}
	if k, err := NewLoginKey(ctx, auto, nil); k != nil || err != nil {
		t.Fatalf("dpop auto made a key without asking the realm: %v", err)
	}
	refresh := config.Profile{Issuer: off.Issuer, DPoP: config.DPoPRefresh}
	if k, err := NewLoginKey(ctx, refresh, nil); k == nil || err != nil {
		t.Fatalf("dpop refresh: no key: %v", err)
	}
	on := off
	on.DPoP = config.DPoPOn
	key, err := NewLoginKey(ctx, on, nil)
	if err != nil || key == nil {
		t.Fatalf("dpop on: no key: %v", err)
	}
	if _, err := loginKey(ctx, "p", on, store.Record{KeyThumbprint: "x"}); oidc.KindOf(err) != oidc.KindLoginRequired || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("a bound login without its key: %v (%v)", err, oidc.KindOf(err))
	}
	var rec store.Record
	if err := BindRecord(key, config.DPoPOn, &rec); err != nil {
		t.Fatal(err)
	}
	if _, err := SwapLoginKey(ctx, "p", on, store.Record{}, key); err != nil {
		t.Fatal(err)
	}
	if want, _ := dpop.Thumbprint(key); rec.KeyThumbprint != want || LoginMode(rec) != config.DPoPOn {
		t.Fatalf("the record names %q, want the key's %q", rec.KeyThumbprint, want)
	}
	got, err := loginKey(ctx, "p", on, rec)
	if err != nil || got == nil {
		t.Fatalf("the kept key: %v", err)
	}
	other, _ := dpop.NewKey()
	SwapLoginKey(ctx, "p", on, rec, other)
	if _, err := loginKey(ctx, "p", on, rec); oidc.KindOf(err) != oidc.KindLoginRequired || !strings.Contains(err.Error(), "another DPoP key") {
		t.Fatalf("a bound login with another key in the store: %v", err)
	}
	if err := ForgetLoginKey(ctx, "p", on); err != nil {
		t.Fatal(err)
	}
	if err := ForgetLoginKey(ctx, "p", on); err != nil {
		t.Fatalf("forgetting a forgotten key: %v", err)
	}
	// An unbound login (made before dpop: on) refreshes as it did.
	if c, err := withLoginKey(ctx, "p", on, store.Record{}, nil); err != nil || c != nil {
		t.Fatalf("an unbound login: %v", err)
	}
}
