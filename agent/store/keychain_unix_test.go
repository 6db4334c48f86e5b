//go:build unix

package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

func TestKeychainRealSecretService(t *testing.T) {
	testenv.SecretService(t)
	roundTrip(t, store.NewKeychain())
	if err := store.NewKeychain().Probe(context.Background()); err != nil {
		t.Fatalf("Probe: %v", err)
	}
}

// inChild reruns the named test in a fresh process with the bus address
// given: go-keyring (godbus) keeps one session-bus connection per process,
// so a bus can only be swapped in a new one.
func inChild(t *testing.T, bus string) bool {
	if os.Getenv("KC_AGENT_TEST_CHILD") == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), "KC_AGENT_TEST_CHILD="+t.Name(), "DBUS_SESSION_BUS_ADDRESS="+bus)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("child test failed: %v\n%s", err, out)
	}
	return false
}

func TestKeychainAbsentSecretService(t *testing.T) {
	if !inChild(t, "unix:path="+filepath.Join(t.TempDir(), "no-bus")) {
		return
	}
	k := &store.Keychain{Timeout: 3 * time.Second}
	start := time.Now()
	_, err := k.Get(context.Background(), "absent")
	var ue *store.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("got %v, want an UnavailableError", err)
	}
	if !strings.Contains(ue.Hint(), "--store file") {
		t.Fatalf("hint does not name the file store: %q", ue.Hint())
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("absent Secret Service was not reported promptly")
	}
}

// A bus that accepts the connection and never answers stands for a hung or
// locked Secret Service: go-keyring would block forever.
func TestKeychainHungSecretService(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	if !inChild(t, "unix:path="+sock) {
		return
	}
	k := &store.Keychain{Timeout: 500 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- k.Put(context.Background(), "hung", record()) }()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "no answer within") {
			t.Fatalf("got %v, want a timeout UnavailableError", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("keychain call hung past its timeout")
	}
}

// BenchmarkKeychainGet is what the agent's read-before-refresh costs with a
// real Secret Service, beside a Put (which every rotating refresh does
// anyway): `make bench` runs it.
func BenchmarkKeychainGet(b *testing.B) {
	testenv.SecretService(b)
	s := store.NewKeychain()
	ctx := context.Background()
	profile := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if err := s.Put(ctx, profile, record()); err != nil {
		b.Fatal(err)
	}
	defer s.Delete(ctx, profile)
	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Get(ctx, profile); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Put", func(b *testing.B) {
		for b.Loop() {
			if err := s.Put(ctx, profile, record()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
