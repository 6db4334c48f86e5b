package ipc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSocketPathPrecedence(t *testing.T) {
	t.Setenv("KC_AGENT_SOCK", "/tmp/x/agent.sock")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if p, _ := SocketPath(); p != "/tmp/x/agent.sock" {
		t.Fatalf("KC_AGENT_SOCK ignored: %s", p)
	}
	t.Setenv("KC_AGENT_SOCK", "")
	if p, _ := SocketPath(); p != "/run/user/1000/kc-agent/agent.sock" {
		t.Fatalf("XDG_RUNTIME_DIR ignored: %s", p)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if p, _ := SocketPath(); !strings.Contains(p, "kc-agent-") {
		t.Fatalf("per-user fallback: %s", p)
	}
}

func TestCheckSocketDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sock")
	if err := PrepareSocketDir(dir); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	if err := CheckSocketDir(dir); err == nil || !strings.Contains(err.Error(), "must be 0700") {
		t.Fatalf("a 0755 socket directory was accepted: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if err := CheckSocketDir(f); err == nil {
		t.Fatal("a file accepted as the socket directory")
	}
}
