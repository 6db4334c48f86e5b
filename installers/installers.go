// Package installers renders what `kc-agent service install` writes: the
// systemd user unit (Linux), the LaunchAgent plist (macOS) and the per-user
// Run key command (Windows). The files are rendered by code from the
// templates here and golden-tested; packagers ship the same unit.
package installers

import (
	"bytes"
	_ "embed"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
)

// Label is the service name on every platform.
const Label = "kc-agent"

// LaunchdLabel is the macOS LaunchAgent label.
const LaunchdLabel = "io.github.kc-agent"

// Params are the values a service definition needs.
type Params struct {
	// Binary is the absolute path of a stable kc-agent (not a versioned
	// Homebrew Cellar path that disappears on upgrade).
	Binary string
	// Env is put into the service environment (KC_AGENT_SOCK, ...).
	Env map[string]string
	// LogDir is where the macOS agent logs (~/Library/Logs/kc-agent).
	LogDir string

	// Where the platform has no service manager that knows the agent's
	// process (Windows: a Run key value), the command supplies these.
	//
	// AgentPID is the process ID of this user's running agent, 0 when
	// none runs. It comes from the verified agent (or the one-agent lock),
	// never from an image name.
	AgentPID func() (int, error)
	// Ready tells whether the agent answers on its socket or pipe.
	Ready func() error
}

//go:embed kc-agent.service.tmpl
var unitTmpl string

//go:embed kc-agent.plist.tmpl
var plistTmpl string

// check verifies the binary path of a Unix service definition: a Unix
// path whatever system renders it (the golden tests render every target
// everywhere; Windows has WindowsRunCommand's own check).
func (p Params) check() error {
	if !strings.HasPrefix(p.Binary, "/") {
		return fmt.Errorf("the service needs an absolute binary path, got %q", p.Binary)
	}
	return nil
}

// EnvList is Env sorted by key, for stable output.
func (p Params) EnvList() [][2]string {
	keys := make([]string, 0, len(p.Env))
	for k := range p.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, len(keys))
	for i, k := range keys {
		out[i] = [2]string{k, p.Env[k]}
	}
	return out
}

// systemdQuote quotes a value for an Environment= or ExecStart= line.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$")
	return `"` + r.Replace(s) + `"`
}

// xmlEscape escapes text for a plist's <string> elements.
func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // a strings.Builder never fails
	return b.String()
}

var funcs = template.FuncMap{"sq": systemdQuote, "xml": xmlEscape}

func render(name, tmpl string, p Params) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	t, err := template.New(name).Funcs(funcs).Parse(tmpl)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		return "", err
	}
	return b.String(), nil
}

// SystemdUnit is ~/.config/systemd/user/kc-agent.service.
func SystemdUnit(p Params) (string, error) { return render("unit", unitTmpl, p) }

// LaunchdPlist is ~/Library/LaunchAgents/io.github.kc-agent.plist.
func LaunchdPlist(p Params) (string, error) { return render("plist", plistTmpl, p) }

// StableBinary turns the running executable's path into one that survives
// upgrades: a Homebrew Cellar path (…/Cellar/kc-agent/1.2.3/bin/kc-agent)
// becomes the prefix's bin link (…/bin/kc-agent).
func StableBinary(exe string) string {
	if i := strings.Index(exe, "/Cellar/"); i >= 0 {
		return exe[:i] + "/bin/" + filepath.Base(exe)
	}
	return exe
}

// PythonEnv tells whether binary lives in a Python environment that can be
// deleted with everything in it (kc-agent from the kc-agent-client wheel):
// it returns the environment's directory and its kind ("virtualenv" or
// "conda environment"), or "" when the binary is not in one. The bin (or
// Scripts) directory's parent holds pyvenv.cfg in a virtualenv and
// conda-meta in a conda environment.
func PythonEnv(binary string) (dir, kind string) {
	root := filepath.Dir(filepath.Dir(binary))
	if _, err := os.Stat(filepath.Join(root, "pyvenv.cfg")); err == nil {
		return root, "virtualenv"
	}
	if fi, err := os.Stat(filepath.Join(root, "conda-meta")); err == nil && fi.IsDir() {
		return root, "conda environment"
	}
	return "", ""
}

// Status is what `service status` reports.
type Status struct {
	Installed bool
	Enabled   bool
	Running   bool
	Path      string // the unit/plist/registry entry
	Logs      string // where the agent logs
	Detail    string
}

// Manager installs and controls the per-user service on one platform.
type Manager interface {
	// Definition is the file (or entry) install writes, and its content.
	Definition() (path, content string, err error)
	Install() error
	Uninstall() error
	Start() error
	Stop() error
	Restart() error
	Status() (Status, error)
}

// WindowsRunCommand is the value under
// HKCU\Software\Microsoft\Windows\CurrentVersion\Run\kc-agent: a per-user
// autostart at logon, in the user's session, so the agent sees the user's
// Credential Manager (a machine service would not).
func WindowsRunCommand(p Params) (string, error) {
	// Windows paths, whatever system renders the command (tests, `service
	// print` elsewhere): a drive or UNC path, and no quote, which ends the
	// quoted argument in a Windows command line.
	if !windowsAbs(p.Binary) || strings.ContainsRune(p.Binary+p.LogDir, '"') {
		return "", fmt.Errorf("the Run value needs an absolute Windows path without quotes, got %q", p.Binary)
	}
	if p.LogDir != "" && !windowsAbs(p.LogDir) {
		return "", fmt.Errorf("the log directory must be an absolute Windows path, got %q", p.LogDir)
	}
	cmd := `"` + p.Binary + `" run`
	if p.LogDir != "" {
		cmd += ` --log-file "` + p.LogDir + `\agent.log"`
	}
	return cmd, nil
}

// windowsAbs tells a Windows absolute path: C:\... (or C:/...) or \\server\share.
func windowsAbs(p string) bool {
	if len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') {
		c := p[0] | 0x20
		return c >= 'a' && c <= 'z'
	}
	return strings.HasPrefix(p, `\\`) && len(p) > 2
}
