//go:build unix

package store_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop/tpmkey"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/swtpm"
)

// downTPM is a simulator address nobody listens on.
func downTPM(t *testing.T) tpmkey.Device {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return tpmkey.Device("mssim:" + ln.Addr().String())
}

// With dpop_key: tpm the file store keeps a TPM key, as the TPM's wrapped
// blobs only: the file holds no software key, and Get returns a key that
// signs in the TPM.
func TestFileKeysTPM(t *testing.T) {
	dir := filepath.Join(testenv.TempDir(t), "tokens")
	ks := &store.FileKeys{Dir: dir, Maker: store.KeyMaker{Mode: config.DPoPKeyTPM, TPM: tpmkey.Device(swtpm.Start(t).Device)}}
	keyRoundTrip(t, ks)
	key, err := ks.Generate()
	if _, ok := key.(*tpmkey.Key); !ok || err != nil {
		t.Fatalf("dpop_key: tpm made a %T (%v)", key, err)
	}
	ks.Put(context.Background(), "p", key)
	data, _ := os.ReadFile(filepath.Join(dir, "p.dpop-key"))
	if !strings.Contains(string(data), `"kind":"tpm-p256"`) || strings.Contains(string(data), `"key"`) {
		t.Fatalf("the key file is not a TPM record: %.40s...", data)
	}
	got, err := ks.Get(context.Background(), "p")
	if _, ok := got.(*tpmkey.Key); !ok || err != nil {
		t.Fatalf("Get returned a %T (%v)", got, err)
	}
}

// auto makes TPM keys when the TPM works and software keys when there is
// none; tpm without a TPM fails and says what to set instead; software
// never asks the TPM.
func TestKeyMakerModes(t *testing.T) {
	tpm := tpmkey.Device(swtpm.Start(t).Device)
	for _, tc := range []struct {
		mode  string
		dev   tpmkey.Device
		inTPM bool
	}{
		{config.DPoPKeyAuto, tpm, true},
		{"", tpm, true},
		{config.DPoPKeyAuto, downTPM(t), false},
		{config.DPoPKeyAuto, "/nonexistent/tpmrm0", false},
		{config.DPoPKeySoftware, tpm, false},
		{config.DPoPKeyTPM, tpm, true},
	} {
		key, err := store.KeyMaker{Mode: tc.mode, TPM: tc.dev}.Generate()
		if err != nil {
			t.Fatalf("%q with %s: %v", tc.mode, tc.dev, err)
		}
		if _, ok := key.(*tpmkey.Key); ok != tc.inTPM {
			t.Errorf("%q with %s made a %T", tc.mode, tc.dev, key)
		}
		if _, ok := key.(*ecdsa.PrivateKey); !tc.inTPM && !ok {
			t.Errorf("%q with %s made a %T, want a software key", tc.mode, tc.dev, key)
		}
	}
	_, err := store.KeyMaker{Mode: config.DPoPKeyTPM, TPM: "/nonexistent/tpmrm0"}.Generate()
	if err == nil || !strings.Contains(err.Error(), "dpop_key: tpm") || !strings.Contains(err.Error(), "/nonexistent/tpmrm0") || !strings.Contains(err.Error(), "set dpop_key: auto") {
		t.Fatalf("dpop_key: tpm without a TPM: %v", err)
	}
}

// A TPM key copied to another machine (another swtpm) is refused at Get,
// with an error that asks for a new login (not ErrNotFound, not
// ErrUnavailable: no retry can help); on a machine without a TPM too. A
// TPM that is down is ErrUnavailable: later may work. The original
// machine still gets its key.
func TestTPMKeyElsewhere(t *testing.T) {
	dir := filepath.Join(testenv.TempDir(t), "tokens")
	home := &store.FileKeys{Dir: dir, Maker: store.KeyMaker{TPM: tpmkey.Device(swtpm.Start(t).Device)}}
	key, _ := home.Generate()
	ctx := context.Background()
	if err := home.Put(ctx, "p", key); err != nil {
		t.Fatal(err)
	}
	other := &store.FileKeys{Dir: dir, Maker: store.KeyMaker{TPM: tpmkey.Device(swtpm.Start(t).Device)}}
	_, err := other.Get(ctx, "p")
	if !errors.Is(err, store.ErrKeyUnusable) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "made by another TPM") || !strings.Contains(err.Error(), "kc-agent login") {
		t.Fatalf("another machine's TPM: %v", err)
	}
	none := &store.FileKeys{Dir: dir, Maker: store.KeyMaker{TPM: "/nonexistent/tpmrm0"}}
	_, err = none.Get(ctx, "p")
	if !errors.Is(err, store.ErrKeyUnusable) || errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "this machine has none") {
		t.Fatalf("a machine without a TPM: %v", err)
	}
	down := &store.FileKeys{Dir: dir, Maker: store.KeyMaker{TPM: downTPM(t)}}
	if _, err = down.Get(ctx, "p"); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrKeyUnusable) {
		t.Fatalf("a TPM that is down: %v", err)
	}
	if got, err := home.Get(ctx, "p"); err != nil || thumb(t, got) != thumb(t, key) {
		t.Fatalf("the original machine lost its key: %v", err)
	}
}

// The keychain keeps a TPM key's record like a software key's.
func TestKeychainKeysTPM(t *testing.T) {
	testenv.SecretService(t)
	keyRoundTrip(t, &store.KeychainKeys{Keychain: store.NewKeychain(), Maker: store.KeyMaker{Mode: config.DPoPKeyTPM, TPM: tpmkey.Device(swtpm.Start(t).Device)}})
}

// dpop_key: auto makes a software key for a dpop: on profile (a proof per
// API request; a TPM would make every request wait) and a TPM key for the
// modes that sign only at refresh; dpop_key: tpm keeps it in the TPM.
func TestKeysForProfileAutoPrefersSoftwareForOn(t *testing.T) {
	t.Setenv(store.TPMEnv, swtpm.Start(t).Device)
	t.Setenv("KC_AGENT_STATE_DIR", testenv.TempDir(t))
	for _, tc := range []struct {
		dpop, key string
		inTPM     bool
	}{
		{config.DPoPOn, "", false},
		{config.DPoPOn, config.DPoPKeyAuto, false},
		{config.DPoPOn, config.DPoPKeyTPM, true},
		{config.DPoPRefresh, "", true},
		{"", config.DPoPKeyAuto, true},
	} {
		ks, err := store.KeysForProfile(config.Profile{Issuer: "https://idp.example", Store: config.StoreFile, DPoP: tc.dpop, DPoPKey: tc.key})
		if err != nil {
			t.Fatal(err)
		}
		key, err := ks.Generate()
		if err != nil {
			t.Fatalf("dpop %q, dpop_key %q: %v", tc.dpop, tc.key, err)
		}
		if _, ok := key.(*tpmkey.Key); ok != tc.inTPM {
			t.Errorf("dpop %q, dpop_key %q made a %T", tc.dpop, tc.key, key)
		}
	}
}
