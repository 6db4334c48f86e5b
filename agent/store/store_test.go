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

func record() store.Record {
	return store.Record{RefreshToken: "rt-secret-value", Issuer: "https://sso.example.com/realms/r", ClientID: "kc-agent", Username: "alice", SavedAt: time.Now().UTC().Round(time.Second)}
}

func roundTrip(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	profile := fmt.Sprintf("test-%d", time.Now().UnixNano())
	if _, err := s.Get(ctx, profile); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get of a missing profile: got %v, want ErrNotFound", err)
	}
	want := record()
	if err := s.Put(ctx, profile, want); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, err := s.Get(ctx, profile)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.RefreshToken != want.RefreshToken || got.Issuer != want.Issuer || !got.SavedAt.Equal(want.SavedAt) {
		t.Fatalf("Get returned a different record: %v", got)
	}
	want.RefreshToken = "rotated"
	if err := s.Put(ctx, profile, want); err != nil {
		t.Fatalf("Put (overwrite): %v", err)
	}
	if got, _ := s.Get(ctx, profile); got.RefreshToken != "rotated" {
		t.Fatal("overwrite did not replace the token")
	}
	if err := s.Delete(ctx, profile); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, profile); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete: got %v, want ErrNotFound", err)
	}
}

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

func TestFileStore(t *testing.T) {
	var warn strings.Builder
	f := &store.File{Dir: filepath.Join(t.TempDir(), "tokens"), Warn: &warn}
	roundTrip(t, f)
	if !strings.Contains(warn.String(), "plain file") {
		t.Fatalf("file store did not warn: %q", warn.String())
	}
	if strings.Contains(warn.String(), "rt-secret-value") {
		t.Fatal("warning leaked the token")
	}
	ctx := context.Background()
	if err := f.Put(ctx, "p", record()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(f.Dir, "p.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600 (%v)", fi.Mode().Perm(), err)
	}
	di, _ := os.Stat(f.Dir)
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("token dir mode %v, want 0700", di.Mode().Perm())
	}
	os.Chmod(filepath.Join(f.Dir, "p.json"), 0o644)
	if _, err := f.Get(ctx, "p"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token file accepted: %v", err)
	}
}

func TestRecordNeverPrintsToken(t *testing.T) {
	r := record()
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%v", r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r)} {
		if strings.Contains(s, r.RefreshToken) {
			t.Fatalf("formatting a Record printed the token: %s", s)
		}
	}
}

func TestCorruptRecord(t *testing.T) {
	dir := t.TempDir()
	f := &store.File{Dir: dir}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{not json"), 0o600)
	_, err := f.Get(context.Background(), "bad")
	if err == nil || !strings.Contains(err.Error(), "kc-agent login") {
		t.Fatalf("corrupt record: got %v", err)
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
