package discovery

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
