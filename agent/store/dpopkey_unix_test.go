//go:build unix

package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

func TestKeychainKeysRealSecretService(t *testing.T) {
	testenv.SecretService(t)
	ks := &store.KeychainKeys{Keychain: store.NewKeychain()}
	ctx := context.Background()
	profile := fmt.Sprintf("test-%d", time.Now().UnixNano())
	// The key is a second item: the token's item of the same profile is
	// untouched by it, and deleting the token leaves the key.
	tokens := store.NewKeychain()
	if err := tokens.Put(ctx, profile, record()); err != nil {
		t.Fatal(err)
	}
	key, _ := ks.Generate()
	if err := ks.Put(ctx, profile, key); err != nil {
		t.Fatal(err)
	}
	if r, err := tokens.Get(ctx, profile); err != nil || r.RefreshToken != record().RefreshToken {
		t.Fatalf("storing the key changed the token item: %v", err)
	}
	tokens.Delete(ctx, profile)
	if _, err := ks.Get(ctx, profile); err != nil {
		t.Fatalf("deleting the token took the key with it: %v", err)
	}
	ks.Delete(ctx, profile)
	keyRoundTrip(t, ks)
}
