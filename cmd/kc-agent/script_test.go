package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/ipc"
)

func TestMain(m *testing.M) {
	if path := os.Getenv("KC_TEST_PANIC_TO"); path != "" { // panics_windows_test.go
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			os.Exit(9)
		}
		panicsTo(f)
		panic("the agent crashed")
	}
	testscript.Main(wineExit{m}, map[string]func(){
		"kc-agent": func() { os.Exit(run(os.Args[1:], systemIO())) },
	})
}

// wineExit exits with the tests' status before testscript removes its
// temporary directory: under Wine 8 os.RemoveAll fails, and testscript
// would turn a pass into exit 1. The harness cleans up from Linux.
type wineExit struct{ m *testing.M }

func (w wineExit) Run() int {
	code := w.m.Run()
	if testenv.UnderWine() {
		os.Exit(code)
	}
	return code
}

// TestScripts runs testdata/script/*.txtar: the real command, in its own
// process, checked for stdout, stderr and exit status.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("KC_AGENT_CONFIG", filepath.Join(env.WorkDir, "config.yaml"))
			env.Setenv("KC_AGENT_STATE_DIR", filepath.Join(env.WorkDir, "state"))
			if runtime.GOOS == "windows" {
				env.Setenv("KC_AGENT_SOCK", fmt.Sprintf(`\\.\pipe\kc-agent-script-%d-%d`, os.Getpid(), time.Now().UnixNano()))
			} else {
				sock, err := os.MkdirTemp("", "kcs")
				if err != nil {
					return err
				}
				env.Defer(func() { os.RemoveAll(sock) })
				env.Setenv("KC_AGENT_SOCK", filepath.Join(sock, "d", "agent.sock"))
			}
			env.Setenv("KC_AGENT_NO_AUTOSTART", "1")
			env.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(env.WorkDir, "no-bus"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":     cmdExits,
			"waitagent": cmdWaitAgent,
		},
	})
}

// cmdExits runs a command and checks its exact exit status:
//
//	exits 4 kc-agent token
//
// (`! exec` only checks that a command failed.) Its stdout and stderr are
// checked by the stdout and stderr commands that follow, as after exec.
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %q is not an exit code", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

// cmdWaitAgent waits until the agent at $KC_AGENT_SOCK answers.
func cmdWaitAgent(ts *testscript.TestScript, neg bool, args []string) {
	c := ipc.NewClientAt(ts.Getenv("KC_AGENT_SOCK"))
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Health(ctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ts.Fatalf("no agent answered at %s within 20s", c.Path)
}
