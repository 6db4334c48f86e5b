package installers

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kc-agent/kc-agent/internal/atomicfile"
)

// ErrNoUserManager means there is no systemd user instance to install into.
var ErrNoUserManager = errors.New("no systemd user manager is running here")

// NoUserManagerHint lists what works without a service manager.
const NoUserManagerHint = "kc-agent still works without a service: the first `kc-agent token` (or `kc-agent exec`) starts the agent in the background; " +
	"or start it from your shell profile with `kc-agent run >/dev/null 2>&1 &`; under WSL, enable systemd in /etc/wsl.conf ([boot] systemd=true)"

// Systemd manages a systemd user unit.
type Systemd struct {
	Params
	// UnitDir is ~/.config/systemd/user.
	UnitDir string
	// Systemctl is the systemctl command, found on PATH when empty.
	Systemctl string
}

// NewSystemd returns the Linux manager for the current user.
func NewSystemd(p Params) (*Systemd, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(home, ".config")
	}
	return &Systemd{Params: p, UnitDir: filepath.Join(dir, "systemd", "user")}, nil
}

func (s *Systemd) unitPath() string { return filepath.Join(s.UnitDir, Label+".service") }

func (s *Systemd) Definition() (string, string, error) {
	u, err := SystemdUnit(s.Params)
	return s.unitPath(), u, err
}

func (s *Systemd) systemctl(args ...string) (string, error) {
	systemctl := s.Systemctl
	if systemctl == "" {
		systemctl = "systemctl"
	}
	out, err := exec.Command(systemctl, append([]string{"--user"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// available tells whether a user manager answers.
func (s *Systemd) available() error {
	if out, err := s.systemctl("show-environment"); err != nil {
		detail := out
		if detail == "" {
			detail = err.Error()
		}
		if len(detail) > 200 {
			detail = detail[:200]
		}
		return fmt.Errorf("%w (systemctl --user: %s)", ErrNoUserManager, detail)
	}
	return nil
}

func (s *Systemd) Install() error {
	if err := s.available(); err != nil {
		return err
	}
	path, unit, err := s.Definition()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.UnitDir, 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(path, []byte(unit), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	for _, args := range [][]string{{"daemon-reload"}, {"enable", Label + ".service"}, {"restart", Label + ".service"}} {
		if out, err := s.systemctl(args...); err != nil {
			return fmt.Errorf("systemctl --user %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

func (s *Systemd) Uninstall() error {
	if err := s.available(); err != nil {
		// Still remove our file: nothing else of ours is left to undo.
		if rmErr := os.Remove(s.unitPath()); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			return rmErr
		}
		return nil
	}
	s.systemctl("disable", "--now", Label+".service")
	if err := os.Remove(s.unitPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_, err := s.systemctl("daemon-reload")
	return err
}

func (s *Systemd) control(verb string) error {
	if err := s.available(); err != nil {
		return err
	}
	if out, err := s.systemctl(verb, Label+".service"); err != nil {
		return fmt.Errorf("systemctl --user %s %s: %v: %s", verb, Label, err, out)
	}
	return nil
}

func (s *Systemd) Start() error   { return s.control("start") }
func (s *Systemd) Stop() error    { return s.control("stop") }
func (s *Systemd) Restart() error { return s.control("restart") }

func (s *Systemd) Status() (Status, error) {
	st := Status{Path: s.unitPath(), Logs: "journalctl --user -u " + Label}
	if _, err := os.Stat(s.unitPath()); err == nil {
		st.Installed = true
	}
	if err := s.available(); err != nil {
		st.Detail = err.Error()
		return st, nil
	}
	if out, _ := s.systemctl("is-enabled", Label+".service"); out == "enabled" {
		st.Enabled = true
	}
	if out, _ := s.systemctl("is-active", Label+".service"); out == "active" {
		st.Running = true
	}
	return st, nil
}
