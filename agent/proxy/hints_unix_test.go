//go:build unix

package proxy

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

// Under an administrator's system-wide file, the advice is proxy.listen:
// auto in that file, never a fixed port everyone would share (8421) nor a
// port picked at start (:0): for the moved-port warning and for the wait
// for a taken address alike.
func TestSharedHostAdviceIsAuto(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("the system-wide file must belong to root: run as root")
	}
	etc := filepath.Join(t.TempDir(), "etc")
	sys := filepath.Join(etc, "config.yaml")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sys, []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\nroutes:\n  - name: a\n    upstream: https://api.example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KC_AGENT_SYSTEM_CONFIG", sys)
	user := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(user, []byte("proxy:\n  listen: 127.0.0.1:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(user)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SystemPath() != sys {
		t.Fatalf("the system file is not in use: %q", cfg.SystemPath())
	}
	state := testenv.TempDir(t)
	var hints []string
	for range 2 { // the second start moves, and warns
		p, err := New(Options{Config: cfg, Tokens: fakeTokens{}, StateDir: state, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		hints = p.Status(false).WarningHints
	}
	hints = append(hints, waitHint(cfg))
	if len(hints) != 2 {
		t.Fatalf("hints: %q", hints)
	}
	for _, h := range hints {
		if !strings.Contains(h, "proxy.listen: auto in "+sys) || strings.Contains(h, "8421") || strings.Contains(h, ":0") {
			t.Errorf("advice under a system file: %q", h)
		}
	}
}
