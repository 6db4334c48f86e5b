package installers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// The test binary plays the agent when KC_FAKE_AGENT is set: "fail" logs a
// fatal error to --log-file and exits 3, as `kc-agent run` does; "serve"
// writes its pid to KC_FAKE_AGENT_PIDFILE and runs until stopped.
func TestMain(m *testing.M) {
	switch os.Getenv("KC_FAKE_AGENT") {
	case "fail":
		if len(os.Args) == 4 && os.Args[1] == "run" && os.Args[2] == "--log-file" {
			os.WriteFile(os.Args[3], []byte("kc-agent: error: the config directory is not yours\n"), 0o600)
		}
		os.Exit(3)
	case "serve":
		os.WriteFile(os.Getenv("KC_FAKE_AGENT_PIDFILE"), []byte(strconv.Itoa(os.Getpid())), 0o600)
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeManager is the Windows manager on a Run key of its own, a log under
// a temporary LOCALAPPDATA and this test binary as the agent.
func fakeManager(t *testing.T, mode string) (*runKeyManager, string) {
	t.Helper()
	old := runKey
	runKey = `Software\kc-agent-test\Run`
	t.Cleanup(func() {
		registry.DeleteKey(registry.CURRENT_USER, runKey)
		runKey = old
	})
	dir := testenv.TempDir(t)
	t.Setenv("LOCALAPPDATA", dir)
	t.Setenv("KC_FAKE_AGENT", mode)
	pidFile := filepath.Join(dir, "pid")
	t.Setenv("KC_FAKE_AGENT_PIDFILE", pidFile)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m := &runKeyManager{Params{Binary: exe}}
	m.AgentPID = func() (int, error) {
		data, err := os.ReadFile(pidFile)
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		pid, _ := strconv.Atoi(string(data))
		if h, err := windows.OpenProcess(windows.SYNCHRONIZE, false, uint32(pid)); err == nil {
			ev, _ := windows.WaitForSingleObject(h, 0)
			windows.CloseHandle(h)
			if ev == uint32(windows.WAIT_TIMEOUT) {
				return pid, nil
			}
		}
		return 0, nil
	}
	m.Ready = func() error {
		if pid, _ := m.AgentPID(); pid > 0 {
			return nil
		}
		return errors.New("not yet")
	}
	return m, pidFile
}

// An agent that exits at start is reported with what it logged: under the
// Run key its stderr goes nowhere.
func TestStartReportsTheStartError(t *testing.T) {
	m, _ := fakeManager(t, "fail")
	err := m.Start()
	var se *StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "the config directory is not yours") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("got %v, want the agent's start error", err)
	}
}

// install starts the agent and waits for it; status says it runs; stop
// ends that process (by its pid, not every kc-agent); uninstall stops it
// first and removes the value.
func TestServiceCycle(t *testing.T) {
	m, _ := fakeManager(t, "serve")
	if err := m.Install(); err != nil {
		t.Fatal(err)
	}
	st, _ := m.Status()
	pid, _ := m.AgentPID()
	if !st.Installed || !st.Running || pid == 0 || pid == os.Getpid() {
		t.Fatalf("after install: %+v (pid %d)", st, pid)
	}
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.QUERY_VALUE)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := k.GetStringValue(Label)
	k.Close()
	if err != nil || !strings.Contains(v, `" run --log-file "`) {
		t.Fatalf("Run value %q %v", v, err)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Status(); st.Running {
		t.Fatal("still running after stop")
	}
	// This test process, which plays `kc-agent service stop`, survived.
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Status(); !st.Running {
		t.Fatal("restart did not start the agent")
	}
	if err := m.Uninstall(); err != nil {
		t.Fatal(err)
	}
	st, _ = m.Status()
	if st.Installed || st.Running {
		t.Fatalf("after uninstall: %+v", st)
	}
}

func TestStopRefusesItself(t *testing.T) {
	if err := StopPID(windows.GetCurrentProcessId()); err == nil {
		t.Fatal("stop would have ended the command itself")
	}
	if err := StopPID(4); err == nil { // System, not the user's
		t.Fatal(fmt.Sprint("stopped pid 4"))
	}
}
