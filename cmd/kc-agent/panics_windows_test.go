package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// A crash of an agent started from the Run key (stderr: nowhere) leaves
// its panic in the log file.
func TestPanicReachesTheLog(t *testing.T) {
	log := filepath.Join(testenv.TempDir(t), "agent.log")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "KC_TEST_PANIC_TO="+log)
	if err := cmd.Run(); err == nil {
		t.Fatal("the crashing child exited 0")
	}
	data, _ := os.ReadFile(log)
	if !strings.Contains(string(data), "panic: the agent crashed") {
		t.Fatalf("the log lacks the panic: %q", data)
	}
}
