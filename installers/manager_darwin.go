package installers

import (
	"os"
	"path/filepath"

	"github.com/kardianos/service"
)

// launchd manages a LaunchAgent through kardianos/service, with our own
// plist (RunAtLoad, KeepAlive, logs in ~/Library/Logs/kc-agent).
type launchd struct {
	Params
	svc  service.Service
	path string
}

type noop struct{}

func (noop) Start(service.Service) error { return nil }
func (noop) Stop(service.Service) error  { return nil }

// New returns the macOS manager.
func New(p Params) (Manager, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, err
	}
	if p.LogDir == "" {
		p.LogDir = filepath.Join(home, "Library", "Logs", "kc-agent")
	}
	plist, err := LaunchdPlist(p)
	if err != nil {
		return nil, err
	}
	svc, err := service.New(noop{}, &service.Config{
		Name:       LaunchdLabel,
		Executable: p.Binary,
		Arguments:  []string{"run"},
		Option: service.KeyValue{
			"UserService":   true,
			"KeepAlive":     true,
			"RunAtLoad":     true,
			"LaunchdConfig": plist, // already rendered: no template actions left
		},
	})
	if err != nil {
		return nil, err
	}
	return &launchd{Params: p, svc: svc, path: filepath.Join(home, "Library", "LaunchAgents", LaunchdLabel+".plist")}, nil
}

func (l *launchd) Definition() (string, string, error) {
	c, err := LaunchdPlist(l.Params)
	return l.path, c, err
}

func (l *launchd) Install() error {
	if err := os.MkdirAll(l.LogDir, 0o700); err != nil {
		return err
	}
	_ = l.svc.Stop()
	_ = l.svc.Uninstall()
	if err := l.svc.Install(); err != nil {
		return err
	}
	return l.svc.Start()
}

func (l *launchd) Uninstall() error {
	_ = l.svc.Stop()
	return l.svc.Uninstall()
}

func (l *launchd) Start() error   { return l.svc.Start() }
func (l *launchd) Stop() error    { return l.svc.Stop() }
func (l *launchd) Restart() error { return l.svc.Restart() }

func (l *launchd) Status() (Status, error) {
	st := Status{Path: l.path, Logs: filepath.Join(l.LogDir, "agent.log")}
	if _, err := os.Stat(l.path); err == nil {
		st.Installed, st.Enabled = true, true
	}
	if s, err := l.svc.Status(); err == nil && s == service.StatusRunning {
		st.Running = true
	}
	return st, nil
}
