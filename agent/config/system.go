package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/kc-agent/kc-agent/internal/filetrust"
	"github.com/kc-agent/kc-agent/internal/peer"
)

// SystemFilePath is the system-wide config an administrator rolls out for
// every user of the machine: $KC_AGENT_SYSTEM_CONFIG (tests), else
// /etc/kc-agent/config.yaml, /Library/Application Support/kc-agent/config.yaml
// on macOS, %ProgramData%\kc-agent\config.yaml on Windows.
func SystemFilePath() string {
	if p := os.Getenv("KC_AGENT_SYSTEM_CONFIG"); p != "" {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return p
	}
	switch runtime.GOOS {
	case "darwin":
		return "/Library/Application Support/kc-agent/config.yaml"
	case "windows":
		dir := os.Getenv("ProgramData")
		if dir == "" {
			dir = `C:\ProgramData`
		}
		return filepath.Join(dir, "kc-agent", "config.yaml")
	}
	return "/etc/kc-agent/config.yaml"
}

// loadSystem reads the system file; nil when there is none. It must belong
// to root (the Administrators), and neither it nor a directory above it
// may be writable by others: it steers tokens for every user. It is opened
// once and checked as opened (filetrust.ReadFile), so a name swapped
// between the check and the read changes nothing.
func loadSystem(path string) (*Config, error) {
	data, err := filetrust.ReadFile(path, filetrust.System)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, systemError(path, err)
	}
	return parse(path, data, true, peer.Visible)
}

// merge lays the user's file over the system file, profile by profile and
// route by route (by name); proxy settings field by field. The result
// edits and saves the user's file only. Then the profiles routes name are
// checked against the merged set: a user route naming no profile is the
// user's error (userErr); a system route naming a profile neither file
// defines (one some users define for themselves, and this one hasn't) is
// left out and said so (LeftOut), the rest of the system file serving;
// anything else the two files can't do together is the system file's
// (sysErr), which Load then ignores.
func merge(sys, user *Config) (m *Config, userErr, sysErr error) {
	m = &Config{path: user.path, own: user, Profiles: map[string]Profile{}, sources: map[string]string{}, ownersVisible: user.ownersVisible}
	for n, p := range sys.Profiles {
		m.Profiles[n] = p
		m.sources["profile/"+n] = sys.path
	}
	for n, p := range user.Profiles {
		m.Profiles[n] = p
		m.sources["profile/"+n] = user.path
	}
	mine := map[string]bool{}
	for i, r := range user.Routes {
		mine[r.Name] = true
		if _, ok := m.Profiles[r.ProfileName()]; !ok {
			return nil, user.refError(i, r), nil
		}
	}
	for i, r := range sys.Routes {
		if mine[r.Name] {
			continue
		}
		if _, ok := m.Profiles[r.ProfileName()]; !ok {
			m.leftOut = append(m.leftOut, sys.refError(i, r))
			continue
		}
		m.Routes = append(m.Routes, r)
		m.sources["route/"+r.Name] = sys.path
	}
	m.Routes = append(m.Routes, user.Routes...)
	for _, r := range user.Routes {
		m.sources["route/"+r.Name] = user.path
	}
	m.Store = sys.Store
	if user.Store != "" {
		m.Store = user.Store
	}
	m.Proxy = sys.Proxy
	if user.Proxy.Listen != "" {
		m.Proxy.Listen = user.Proxy.Listen
	}
	if user.Proxy.CAFile != "" {
		m.Proxy.CAFile = user.Proxy.CAFile
	}
	if user.Proxy.UpstreamProxy != "" {
		m.Proxy.UpstreamProxy = user.Proxy.UpstreamProxy
	}
	m.Proxy.UnsafeListenNonLoopback = sys.Proxy.UnsafeListenNonLoopback || user.Proxy.UnsafeListenNonLoopback
	m.Agent = mergeAgent(sys.Agent, user.Agent)
	// Each file was checked on its own; what only the two together can
	// break (two intercepts of one origin, a listen address the other
	// file's flag allows) is checked here.
	if err := m.validate(); err != nil {
		return nil, nil, &Error{File: user.path, Msg: fmt.Sprintf("together with the system-wide config %s: %v", sys.path, err), err: err}
	}
	return m, nil, nil
}

// LeftOut are the system routes left out because they name a profile no
// file defines, each with the system file's line.
func (c *Config) LeftOut() []error { return c.leftOut }

// ProfileSource is the file the named profile comes from.
func (c *Config) ProfileSource(name string) string {
	if s, ok := c.sources["profile/"+name]; ok {
		return s
	}
	return c.path
}

// RouteSource is the file the named route comes from.
func (c *Config) RouteSource(name string) string {
	if s, ok := c.sources["route/"+name]; ok {
		return s
	}
	return c.path
}

// SystemPath is the system-wide file merged into this config, or "".
func (c *Config) SystemPath() string {
	for _, s := range c.sources {
		if s != c.path {
			return s
		}
	}
	return ""
}
