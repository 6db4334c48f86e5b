package store_test

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

// keyRoundTrip: a generated key is not kept until Put; Get returns the
// same key (same thumbprint); Put replaces; Delete forgets.
func keyRoundTrip(t *testing.T, ks store.KeyStore) string {
	t.Helper()
	ctx := context.Background()
	profile := fmt.Sprintf("test-%d", time.Now().UnixNano())
	if _, err := ks.Get(ctx, profile); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing key: got %v, want ErrNotFound", err)
	}
	key, err := ks.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Get(ctx, profile); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Generate kept the key before Put: %v", err)
	}
	if err := ks.Put(ctx, profile, key); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := ks.Get(ctx, profile)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if thumb(t, got) != thumb(t, key) {
		t.Fatal("Get returned another key than Put kept")
	}
	second, _ := ks.Generate()
	if err := ks.Put(ctx, profile, second); err != nil {
		t.Fatalf("Put (replace): %v", err)
	}
	if got, _ := ks.Get(ctx, profile); thumb(t, got) != thumb(t, second) {
		t.Fatal("Put did not replace the key")
	}
	if err := ks.Delete(ctx, profile); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := ks.Get(ctx, profile); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
	}
	if err := ks.Delete(ctx, profile); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Delete of a missing key: got %v, want ErrNotFound", err)
	}
	return profile
}

func thumb(t *testing.T, k crypto.Signer) string {
	t.Helper()
	s, err := dpop.Thumbprint(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileKeys(t *testing.T) {
	dir := filepath.Join(testenv.TempDir(t), "tokens")
	ks := &store.FileKeys{Dir: dir}
	keyRoundTrip(t, ks)
	ctx := context.Background()
	key, _ := ks.Generate()
	if err := ks.Put(ctx, "p", key); err != nil {
		t.Fatal(err)
	}
	// Token files end in .json, key files in .dpop-key: deleting a token
	// leaves its key (logout deletes both, each on purpose).
	tokens := &store.File{Dir: dir}
	if err := tokens.Put(ctx, "p", record()); err != nil {
		t.Fatal(err)
	}
	if err := tokens.Delete(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Get(ctx, "p"); err != nil {
		t.Fatalf("deleting the token took the key with it: %v", err)
	}
	checkKeyFileProtection(t, ks, filepath.Join(dir, "p.dpop-key"))
}

func TestKeyFileCorrupt(t *testing.T) {
	dir := testenv.TempDir(t)
	for name, data := range map[string]string{
		"notjson": "{",
		"kind":    `{"v":1,"kind":"tpm","key":"x"}`,
		"base64":  `{"v":1,"kind":"software-p256","key":"!!"}`,
	} {
		os.WriteFile(filepath.Join(dir, name+".dpop-key"), []byte(data), 0o600)
		_, err := (&store.FileKeys{Dir: dir}).Get(context.Background(), name)
		if !errors.Is(err, store.ErrKeyUnusable) || errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "kc-agent login") {
			t.Errorf("%s: got %v, want an ErrKeyUnusable that says to log in again", name, err)
		}
	}
}

// A key file that can not be read (here a directory in its place: EISDIR,
// as EIO, EMFILE or ESTALE on an NFS home) is ErrUnavailable, retried
// later, not ErrKeyUnusable (a new login).
func TestKeyFileReadErrorIsUnavailable(t *testing.T) {
	dir := testenv.TempDir(t)
	if err := os.Mkdir(filepath.Join(dir, "p.dpop-key"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := (&store.FileKeys{Dir: dir}).Get(context.Background(), "p")
	if !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrKeyUnusable) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an unreadable key file: %v; want ErrUnavailable", err)
	}
}
