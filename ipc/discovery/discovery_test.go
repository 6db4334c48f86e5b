package discovery

import (
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
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
	t.Setenv("TMPDIR", testenv.TempDir(t))
	b, _ := SocketPath()
	if a != b || a == "" {
		t.Fatalf("socket path depends on the session: %q vs %q", a, b)
	}
	sock := "/tmp/x/agent.sock"
	if runtime.GOOS == "windows" {
		sock = `\\.\pipe\x`
	}
	t.Setenv("KC_AGENT_SOCK", sock)
	if p, _ := SocketPath(); p != sock {
		t.Fatalf("KC_AGENT_SOCK ignored: %s", p)
	}
	if l, _ := LockPath(); l == "" || strings.HasPrefix(l, "/tmp/x/") || strings.HasPrefix(l, `\\.\pipe`) {
		t.Fatalf("the lock follows KC_AGENT_SOCK: %s", l)
	}
}
