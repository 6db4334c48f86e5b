//go:build unix

// Package testenv gives tests the real peers they need: the shared
// Keycloak and the Secret Service session the test command runs in.
package testenv

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

var (
	kcOnce sync.Once
	kc     *keycloak.Server
	kcErr  error
)

// Keycloak returns the shared real Keycloak, starting it if needed. Under
// `go test -short` the test is skipped instead.
func Keycloak(t testing.TB) *keycloak.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real Keycloak; skipped with -short")
	}
	kcOnce.Do(func() {
		kc, kcErr = keycloak.Ensure(context.Background(), func(f string, a ...any) { t.Logf(f, a...) })
	})
	if kcErr != nil {
		t.Fatalf("starting Keycloak: %v", kcErr)
	}
	return kc
}

// SecretService makes sure a Secret Service session bus is there. The test
// command (make test) provides one; running `go test` bare skips, unless
// KC_AGENT_REQUIRE_SECRET_SERVICE=1 says it must be there.
func SecretService(t testing.TB) {
	t.Helper()
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" && os.Getenv("KC_AGENT_IN_SECRET_SESSION") == "1" {
		return
	}
	if os.Getenv("KC_AGENT_REQUIRE_SECRET_SERVICE") == "1" {
		t.Fatal("no Secret Service session: run the tests through scripts/with-secret-service.sh (make test does)")
	}
	t.Skip("no Secret Service session; run through scripts/with-secret-service.sh (make test does)")
}
