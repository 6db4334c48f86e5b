package ipc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

func TestLockExcludesAndCrashReleases(t *testing.T) {
	path := filepath.Join(testenv.TempDir(t), "l", "agent.lock")
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
