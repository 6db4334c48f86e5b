//go:build unix && !darwin

package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Without a session bus address the keychain is "not available here" at
// once, for every call, and the hint names store: file; nothing is asked
// of D-Bus (godbus would autolaunch a bus: TestNoSessionBusIsStarted in
// cmd/kc-agent counts the processes).
func TestNoSessionBusNoKeychain(t *testing.T) {
	for _, addr := range []string{"", "autolaunch:"} {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
		k := NewKeychain()
		ctx := context.Background()
		_, getErr := k.Get(ctx, "p")
		for _, err := range []error{getErr, k.Put(ctx, "p", Record{RefreshToken: "x", Issuer: "https://x"}), k.Delete(ctx, "p"), k.Probe(ctx)} {
			var ue *UnavailableError
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrNoSessionBus) || !errors.As(err, &ue) {
				t.Fatalf("%q: got %v", addr, err)
			}
			if !strings.Contains(err.Error(), "no keychain is available here") || !strings.Contains(ue.Hint(), "store: file") {
				t.Fatalf("%q: %v (hint: %s)", addr, err, ue.Hint())
			}
		}
	}
}
