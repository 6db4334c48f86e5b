package ipc

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

type discoveryVectors struct {
	Cases []struct {
		Name string       `json:"name"`
		Env  DiscoveryEnv `json:"env"`
		Want []string     `json:"want"`
	} `json:"cases"`
}

// TestDiscoveryVectors checks the discovery order against the vectors the
// Python client shares.
func TestDiscoveryVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/discovery.json")
	if err != nil {
		t.Fatal(err)
	}
	var v discoveryVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) < 5 {
		t.Fatalf("only %d vectors", len(v.Cases))
	}
	for _, c := range v.Cases {
		if got := CandidatesFor(c.Env); !slices.Equal(got, c.Want) {
			t.Errorf("%s: got %q, want %q", c.Name, got, c.Want)
		}
	}
}

// The process's own discovery ignores XDG_RUNTIME_DIR and TMPDIR.
func TestSocketPathIgnoresSessionVariables(t *testing.T) {
	t.Setenv("KC_AGENT_SOCK", "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	a, _ := SocketPath()
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("TMPDIR", t.TempDir())
	b, _ := SocketPath()
	if a != b || a == "" {
		t.Fatalf("socket path depends on the session: %q vs %q", a, b)
	}
	t.Setenv("KC_AGENT_SOCK", "/tmp/x/agent.sock")
	if p, _ := SocketPath(); p != "/tmp/x/agent.sock" {
		t.Fatalf("KC_AGENT_SOCK ignored: %s", p)
	}
	if l, _ := LockPath(); strings.HasPrefix(l, "/tmp/x/") {
		t.Fatalf("the lock follows KC_AGENT_SOCK: %s", l)
	}
}

func TestCheckSocketDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sock")
	if err := PrepareSocketDir(dir); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	err := CheckSocketDir(dir)
	if err == nil || !strings.Contains(err.Error(), "must be 0700") || !errors.Is(err, ErrUntrusted) {
		t.Fatalf("a 0755 socket directory was accepted: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if err := CheckSocketDir(f); err == nil {
		t.Fatal("a file accepted as the socket directory")
	}
}

func TestLockExcludesAndCrashReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l", "agent.lock")
	l1, err := TryLock(path, "agent", "/s/agent.sock")
	if err != nil {
		t.Fatal(err)
	}
	_, err = TryLock(path, "agent", "/other.sock")
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.PID != os.Getpid() || le.Holder.Socket != "/s/agent.sock" {
		t.Fatalf("second lock: %v", err)
	}
	if !strings.Contains(err.Error(), "already runs") || !strings.Contains(err.Error(), "/s/agent.sock") {
		t.Fatalf("message does not name the running agent: %v", err)
	}
	l1.Release()
	l2, err := TryLock(path, "agent", "")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

// A lock holder killed with SIGKILL leaves no lock behind: the kernel
// drops flock locks with the process. flock(1) holds the same kind of lock.
func TestLockDiesWithItsHolder(t *testing.T) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("flock(1) not installed")
	}
	dir := filepath.Join(t.TempDir(), "l")
	os.Mkdir(dir, 0o700)
	path := filepath.Join(dir, "agent.lock")
	holder := exec.Command(flock, "--close", path, "sleep", "60") // only flock itself holds the lock
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer holder.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l, err := TryLock(path, "agent", "")
		if errors.Is(err, ErrLocked) {
			break
		}
		if err == nil {
			l.Release()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the holder never took the lock: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	holder.Process.Signal(syscall.SIGKILL)
	holder.Wait()
	l, err := TryLock(path, "agent", "")
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	l.Release()
}

// A directory someone else planted at a later candidate is never
// contacted, and does not stop the client from using (or starting an
// agent at) the first candidate, which is ours. At the first candidate it
// is an error.
func TestPlantedLaterCandidateIsSkipped(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to make a directory of another user")
	}
	base := t.TempDir()
	ours := filepath.Join(base, "ours")
	os.Mkdir(ours, 0o700)
	foreign := filepath.Join(base, "foreign")
	os.Mkdir(foreign, 0o755)
	os.Chown(foreign, 65534, 65534)
	c, err := clientFor([]string{filepath.Join(ours, "agent.sock"), filepath.Join(foreign, "agent.sock")})
	if err != nil || c.Path != filepath.Join(ours, "agent.sock") {
		t.Fatalf("with our own first candidate: %v %v", c, err)
	}
	_, err = clientFor([]string{filepath.Join(foreign, "agent.sock"), filepath.Join(ours, "agent.sock")})
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("a foreign first candidate: %v", err)
	}
}
