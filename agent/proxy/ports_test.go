package proxy

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/privatefile"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

func startProxyIn(t *testing.T, state, listen string) *Proxy {
	t.Helper()
	cfg, err := config.Parse("c.yaml", []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\nproxy:\n  listen: "+listen+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Config: cfg, Tokens: fakeTokens{}, StateDir: state, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// portWarnings are the port warnings in p's status, each followed by its
// hint.
func portWarnings(p *Proxy) []string {
	var out []string
	st := p.Status(false)
	for i, w := range st.Warnings {
		if strings.Contains(w, "port is picked anew") {
			out = append(out, w+" HINT: "+st.WarningHints[i])
		}
	}
	return out
}

// With listen: 127.0.0.1:0 an agent that comes back on another port says
// where it served before (programs given that address may now reach
// someone else); with a fixed port it says nothing. The history is a 0600
// file in the state directory.
func TestEphemeralPortMoveWarns(t *testing.T) {
	state := testenv.TempDir(t)
	first := startProxyIn(t, state, "127.0.0.1:0")
	if w := portWarnings(first); len(w) != 0 {
		t.Errorf("first start warns: %q", w)
	}
	// A restart on another port (the first one still holds its own, so
	// the port differs for sure).
	second := startProxyIn(t, state, "127.0.0.1:0")
	w := portWarnings(second)
	if len(w) != 1 || !strings.Contains(w[0], first.Addr()) || strings.Contains(w[0], second.Addr()) || !strings.Contains(w[0], "HINT: restart those programs, and set proxy.listen: auto") {
		t.Errorf("after a move from %s to %s: %q", first.Addr(), second.Addr(), w)
	}
	if err := privatefile.Check(filepath.Join(state, portsFile)); err != nil {
		t.Fatalf("history file: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(state, portsFile)); err != nil || runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("history file: %v %v", fi, err)
	}
	data, _ := os.ReadFile(filepath.Join(state, portsFile))
	if !strings.Contains(string(data), first.Addr()) || !strings.Contains(string(data), second.Addr()) {
		t.Errorf("history: %s", data)
	}

	// A fixed port: no warning, whatever was served before.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fixed := ln.Addr().String()
	ln.Close()
	if w := portWarnings(startProxyIn(t, state, fixed)); len(w) != 0 {
		t.Errorf("fixed port warns: %q", w)
	}
}

func TestPortHistoryIsBounded(t *testing.T) {
	p := &Proxy{stateDir: testenv.TempDir(t), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for i := range 40 {
		p.servedOn([]string{net.JoinHostPort("127.0.0.1", string(rune('0'+i%10))+string(rune('0'+i/10)))})
	}
	if got := loadPorts(p.stateDir); len(got) != maxPorts || got[len(got)-1] != p.served[len(p.served)-1] {
		t.Errorf("history of %d: %v", len(got), got)
	}
}
