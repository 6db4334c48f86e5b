//go:build linux

package wine

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGoProgramRuns is the harness's own check: a Go program (kc-agent
// itself) starts under Wine, which needs the ProcessPrng DLL in system32.
func TestGoProgramRuns(t *testing.T) {
	prefix := Prefix(t)
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), "kc-agent.exe")
	build := exec.Command("go", "build", "-o", exe, "./cmd/kc-agent")
	build.Dir, build.Env = strings.TrimSpace(string(root)), windowsGoEnv()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=windows go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := CombinedOutput(Command(ctx, prefix, exe, "version"))
	if err != nil || !strings.Contains(string(out), "windows/amd64") {
		t.Fatalf("kc-agent.exe version: %v\n%s", err, out)
	}
}

func TestWinPath(t *testing.T) {
	if got := WinPath("/tmp/a b/c"); got != `Z:\tmp\a b\c` {
		t.Errorf("WinPath = %q", got)
	}
}
