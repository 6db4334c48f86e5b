package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"kc-agent": func() { os.Exit(run(os.Args[1:], systemIO())) },
	})
}

// TestScripts runs testdata/script/*.txtar: the real command, in its own
// process, checked for stdout, stderr and exit status.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("KC_AGENT_CONFIG", filepath.Join(env.WorkDir, "config.yaml"))
			env.Setenv("KC_AGENT_STATE_DIR", filepath.Join(env.WorkDir, "state"))
			sock, err := os.MkdirTemp("", "kcs")
			if err != nil {
				return err
			}
			env.Defer(func() { os.RemoveAll(sock) })
			env.Setenv("KC_AGENT_SOCK", filepath.Join(sock, "d", "agent.sock"))
			env.Setenv("KC_AGENT_NO_AUTOSTART", "1")
			env.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(env.WorkDir, "no-bus"))
			return nil
		},
	})
}
