package installers

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"github.com/kc-agent/kc-agent/internal/winsid"
)

// runKey is the per-user autostart key (a variable so that tests use a
// key of their own, never the real one).
var runKey = `Software\Microsoft\Windows\CurrentVersion\Run`

// runKeyManager autostarts the agent at logon from the per-user Run key. A
// Windows service (what kardianos/service installs) runs as another account
// and would not see the user's Credential Manager. Nothing supervises the
// process, so start, stop and status work on the agent's process ID (from
// the verified agent or its lock), never on an image name: `taskkill /IM`
// would also end the command running it and any login in progress.
type runKeyManager struct{ Params }

// New returns the Windows manager.
func New(p Params) (Manager, error) { return &runKeyManager{p}, nil }

// startWait bounds how long start waits for the agent to answer.
var startWait = 20 * time.Second

func (m *runKeyManager) Definition() (string, string, error) {
	p := m.Params
	p.LogDir = filepath.Dir(m.logPath())
	c, err := WindowsRunCommand(p)
	return `HKCU\` + runKey + `\` + Label, c, err
}

func (m *runKeyManager) Install() error {
	_, cmd, err := m.Definition()
	if err != nil {
		return err
	}
	k, _, err := registry.CreateKey(registry.CURRENT_USER, runKey, registry.SET_VALUE)
	if err != nil {
		return err
	}
	defer k.Close()
	if err := k.SetStringValue(Label, cmd); err != nil {
		return err
	}
	// An agent from before (another version) gives way to this one.
	return m.Restart()
}

// Uninstall stops the agent, then removes the Run value.
func (m *runKeyManager) Uninstall() error {
	if err := m.Stop(); err != nil {
		return err
	}
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.SET_VALUE)
	if err != nil {
		if errors.Is(err, registry.ErrNotExist) {
			return nil
		}
		return err
	}
	defer k.Close()
	if err := k.DeleteValue(Label); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return err
	}
	return nil
}

func (m *runKeyManager) logPath() string {
	base := os.Getenv("LOCALAPPDATA")
	if base == "" {
		base = filepath.Join(os.Getenv("USERPROFILE"), "AppData", "Local")
	}
	return filepath.Join(base, "kc-agent", "agent.log")
}

// Start starts the agent detached, as the Run key does at logon, and waits
// until it answers; when it exits first, its start error (the log's last
// lines: under the Run key stderr goes nowhere) is the error.
func (m *runKeyManager) Start() error {
	if pid, err := m.pid(); err == nil && pid > 0 {
		return nil // already running
	}
	logPath := m.logPath()
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return err
	}
	logStart := fileSize(logPath)
	cmd := exec.Command(m.Binary, "run", "--log-file", logPath)
	cmd.Env = os.Environ()
	for _, kv := range m.EnvList() {
		cmd.Env = append(cmd.Env, kv[0]+"="+kv[1])
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", m.Binary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if m.Ready == nil {
		return nil
	}
	deadline := time.Now().Add(startWait)
	for {
		select {
		case err := <-exited:
			return &StartError{Log: logPath, Tail: logTail(logPath, logStart), Err: err}
		case <-time.After(100 * time.Millisecond):
		}
		if m.Ready() == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return &StartError{Log: logPath, Tail: logTail(logPath, logStart), Err: fmt.Errorf("no answer within %s", startWait)}
		}
	}
}

// StartError says the agent did not come up, with what it logged.
type StartError struct {
	Log  string
	Tail string
	Err  error
}

func (e *StartError) Error() string {
	msg := fmt.Sprintf("the agent did not start (%v)", e.Err)
	if e.Tail != "" {
		msg += "; " + e.Log + " says:\n" + e.Tail
	} else {
		msg += "; see " + e.Log
	}
	return msg
}

func fileSize(path string) int64 {
	if fi, err := os.Stat(path); err == nil {
		return fi.Size()
	}
	return 0
}

// logTail is the last lines written to path since offset.
func logTail(path string, offset int64) string {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) < offset {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(bytes.TrimSpace(data[offset:]))), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

func (m *runKeyManager) pid() (int, error) {
	if m.AgentPID == nil {
		return 0, errors.New("no way to find the agent's process")
	}
	return m.AgentPID()
}

// Stop ends this user's agent by its process ID, after checking that the
// process is this user's and not this command. No agent running is not an
// error.
func (m *runKeyManager) Stop() error {
	pid, err := m.pid()
	if err != nil {
		return err
	}
	if pid <= 0 {
		return nil
	}
	return StopPID(uint32(pid))
}

// StopPID ends this user's process pid (never this one), checking its SID first.
func StopPID(pid uint32) error {
	if pid == windows.GetCurrentProcessId() {
		return errors.New("refusing to stop this very process")
	}
	me, err := winsid.Current()
	if err != nil {
		return err
	}
	if sid, err := winsid.OfProcess(pid); err != nil {
		return fmt.Errorf("agent process %d: %w", pid, err)
	} else if sid != me {
		return fmt.Errorf("process %d runs as %s, not as you: not stopping it", pid, winsid.Name(sid))
	}
	h, err := windows.OpenProcess(windows.PROCESS_TERMINATE|windows.SYNCHRONIZE, false, pid)
	if err != nil {
		return fmt.Errorf("opening agent process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	// The agent keeps nothing it would lose: the store is written before
	// a token is published, and the lock dies with the process.
	if err := windows.TerminateProcess(h, 1); err != nil {
		return fmt.Errorf("stopping agent process %d: %w", pid, err)
	}
	if ev, err := windows.WaitForSingleObject(h, 10000); err != nil || ev != windows.WAIT_OBJECT_0 {
		return fmt.Errorf("agent process %d did not exit", pid)
	}
	return nil
}

func (m *runKeyManager) Restart() error {
	if err := m.Stop(); err != nil {
		return err
	}
	return m.Start()
}

func (m *runKeyManager) Status() (Status, error) {
	path, _, _ := m.Definition()
	st := Status{Path: path, Logs: m.logPath()}
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.QUERY_VALUE)
	if err == nil {
		if _, _, err := k.GetStringValue(Label); err == nil {
			st.Installed, st.Enabled = true, true
		}
		k.Close()
	}
	pid, err := m.pid()
	if err != nil {
		st.Detail = "can not tell whether the agent runs: " + err.Error()
	}
	st.Running = pid > 0
	if st.Running {
		st.Detail = fmt.Sprintf("agent pid %d", pid)
	}
	return st, nil
}
