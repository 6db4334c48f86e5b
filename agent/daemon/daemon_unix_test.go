//go:build unix

package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// When its socket is removed (logind deletes /run/user/<uid> at the last
// logout), the agent steps down: clients can not find it any more and would
// start another one on the same stored login.
func TestAgentExitsWhenItsSocketIsRemoved(t *testing.T) {
	dir, err := os.MkdirTemp("", "kcd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s", "agent.sock")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Options{Version: "test", ConfigPath: filepath.Join(dir, "config.yaml"),
			SocketPath: sock, Log: log, Ready: ready, StateDir: filepath.Join(dir, "state"), SocketCheckEvery: 20 * time.Millisecond})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent did not start: %v", err)
	}
	if err := os.RemoveAll(filepath.Dir(sock)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "removed or replaced") {
			t.Fatalf("agent exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent kept running after its socket was removed")
	}
}
