package installers

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/windows/registry"
)

const runKey = `Software\Microsoft\Windows\CurrentVersion\Run`

// runKeyManager autostarts the agent at logon from the per-user Run key. A
// Windows service (what kardianos/service installs) runs as another account
// and would not see the user's Credential Manager.
type runKeyManager struct{ Params }

// New returns the Windows manager.
func New(p Params) (Manager, error) { return &runKeyManager{p}, nil }

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
	return m.Start()
}

func (m *runKeyManager) Uninstall() error {
	k, err := registry.OpenKey(registry.CURRENT_USER, runKey, registry.SET_VALUE)
	if err != nil {
		return err
	}
	defer k.Close()
	if err := k.DeleteValue(Label); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return err
	}
	return nil
}

func (m *runKeyManager) logPath() string {
	return filepath.Join(os.Getenv("LOCALAPPDATA"), "kc-agent", "agent.log")
}

func (m *runKeyManager) Start() error {
	cmd := exec.Command(m.Binary, "run", "--log-file", m.logPath())
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: 0x00000008 | syscall.CREATE_NEW_PROCESS_GROUP}
	return cmd.Start()
}

func (m *runKeyManager) Stop() error {
	return exec.Command("taskkill", "/IM", filepath.Base(m.Binary), "/F").Run()
}

func (m *runKeyManager) Restart() error {
	_ = m.Stop()
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
	return st, nil
}
