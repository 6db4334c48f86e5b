package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// A fatal start error reaches --log-file: under the Windows Run key (and
// some service managers) stderr goes nowhere, and the log was empty.
func TestRunLogsItsFatalError(t *testing.T) {
	dir := testenv.TempDir(t)
	notADir := filepath.Join(dir, "state")
	os.WriteFile(notADir, []byte("x"), 0o600)
	t.Setenv("KC_AGENT_CONFIG", filepath.Join(dir, "config.yaml"))
	t.Setenv("KC_AGENT_STATE_DIR", notADir) // the lock can't be made there
	sock := filepath.Join(dir, "s", "agent.sock")
	if runtime.GOOS == "windows" {
		sock = fmt.Sprintf(`\\.\pipe\kc-agent-runlog-%d-%d`, os.Getpid(), time.Now().UnixNano())
	}
	t.Setenv("KC_AGENT_SOCK", sock)
	logFile := filepath.Join(dir, "agent.log")
	var out, errb strings.Builder
	if code := run([]string{"run", "--log-file", logFile}, &IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb}); code == 0 {
		t.Fatal("the agent started")
	}
	data, _ := os.ReadFile(logFile)
	if !strings.Contains(string(data), "kc-agent: error: ") {
		t.Fatalf("the log lacks the fatal error:\n%s\n(stderr: %s)", data, errb.String())
	}
}
