package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// doctor on Windows names the pipe and checks the state directory's ACL;
// it never claims Unix modes it did not check.
func TestDoctorSaysWhatItChecked(t *testing.T) {
	dir := testenv.TempDir(t)
	t.Setenv("KC_AGENT_CONFIG", filepath.Join(dir, "config.yaml"))
	t.Setenv("KC_AGENT_STATE_DIR", filepath.Join(dir, "state"))
	pipe := fmt.Sprintf(`\\.\pipe\kc-agent-doctor-%d-%d`, os.Getpid(), time.Now().UnixNano())
	t.Setenv("KC_AGENT_SOCK", pipe)
	t.Setenv("KC_AGENT_NO_AUTOSTART", "1")
	var out, errb strings.Builder
	run([]string{"doctor"}, &IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb})
	text := out.String() + errb.String()
	// (The pipe's name is left out: its digits may hold "0600".)
	for _, bad := range []string{"0700", "0600"} {
		if strings.Contains(strings.ReplaceAll(text, pipe, ""), bad) {
			t.Errorf("doctor claims %s on Windows:\n%s", bad, text)
		}
	}
	if !strings.Contains(text, "agent pipe") || !strings.Contains(text, `\\.\pipe\kc-agent-doctor-`) {
		t.Errorf("doctor does not name the pipe:\n%s", text)
	}
}
