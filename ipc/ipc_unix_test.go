//go:build unix

package ipc

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

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
	// flock(1)'s child (sleep) shares the lock until it closes its copy of
	// the descriptor, right after fork: allow it that moment.
	deadline = time.Now().Add(5 * time.Second)
	for {
		l, err := TryLock(path, "agent", "")
		if err == nil {
			l.Release()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the holder was killed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A directory someone else planted at a later candidate is never
// contacted, and does not stop the client from using (or starting an
// agent at) the first candidate, which is ours. At the first candidate it
// is an error.
func TestPlantedLaterCandidateIsSkipped(t *testing.T) {
	testenv.OtherUser(t) // root, to make a directory of another user
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
	if !errors.Is(err, discovery.ErrUntrusted) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("a foreign first candidate: %v", err)
	}
}
