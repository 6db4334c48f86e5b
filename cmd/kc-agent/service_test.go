//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeSystemctl writes a systemctl that records its calls and answers like
// a user manager would for a unit file that exists (or, with noManager,
// like systemctl without a user manager: "Failed to connect to bus").
func fakeSystemctl(t *testing.T, unitDir string, noManager bool) (log string) {
	dir := t.TempDir()
	log = filepath.Join(dir, "calls")
	script := `#!/bin/sh
echo "$*" >> '` + log + `'
`
	if noManager {
		script += `echo "Failed to connect to bus: No medium found" >&2; exit 1
`
	} else {
		script += `unit='` + filepath.Join(unitDir, "kc-agent.service") + `'
case "$2" in
is-enabled|is-active)
	if [ -f "$unit" ] && [ -f '` + dir + `/enabled' ]; then [ "$2" = is-enabled ] && echo enabled || echo active; else echo inactive; exit 3; fi ;;
enable) touch '` + dir + `/enabled' ;;
disable) rm -f '` + dir + `/enabled' ;;
esac
exit 0
`
	}
	path := filepath.Join(dir, "systemctl")
	os.WriteFile(path, []byte(script), 0o755)
	return log
}

func userManagerAvailable() bool {
	return exec.Command("systemctl", "--user", "show-environment").Run() == nil
}

func TestServiceRoundTrip(t *testing.T) {
	e := newCLIEnv(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	unitDir := filepath.Join(home, ".config", "systemd", "user")
	calls := ""
	if userManagerAvailable() {
		t.Log("using the real systemd user instance")
	} else {
		t.Log("no systemd user instance here (systemd is not PID 1): using a recording fake systemctl")
		calls = fakeSystemctl(t, unitDir, false)
		t.Setenv("PATH", filepath.Dir(calls)+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	bin := "/opt/kc/bin/kc-agent"
	code, printed, stderr := e.run("service", "print", "--binary", bin)
	if code != 0 || !strings.Contains(printed, `ExecStart="/opt/kc/bin/kc-agent" run`) || !strings.Contains(stderr, filepath.Join(unitDir, "kc-agent.service")) {
		t.Fatalf("print: %d %s %s", code, printed, stderr)
	}
	for i := 0; i < 2; i++ { // idempotent: a second install updates in place
		code, _, stderr = e.run("service", "install", "--binary", bin)
		if code != 0 || !strings.Contains(stderr, "service installed") {
			t.Fatalf("install #%d: %d %s", i+1, code, stderr)
		}
	}
	written, err := os.ReadFile(filepath.Join(unitDir, "kc-agent.service"))
	if err != nil || string(written) != printed {
		t.Fatalf("installed unit differs from `service print` (%v)", err)
	}
	if !strings.Contains(string(written), "KC_AGENT_SOCK="+os.Getenv("KC_AGENT_SOCK")) {
		t.Fatal("the unit does not carry the socket path")
	}
	code, out, _ := e.run("service", "status", "--binary", bin)
	if code != 0 || !strings.Contains(out, "installed: yes") || !strings.Contains(out, "enabled:   yes") || !strings.Contains(out, "running:   yes") || !strings.Contains(out, "journalctl --user -u kc-agent") {
		t.Fatalf("status after install: %s", out)
	}
	code, _, stderr = e.run("service", "uninstall", "--binary", bin)
	if code != 0 {
		t.Fatalf("uninstall: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(unitDir, "kc-agent.service")); !os.IsNotExist(err) {
		t.Fatal("unit file left behind")
	}
	code, out, _ = e.run("service", "status", "--binary", bin)
	if code != 0 || !strings.Contains(out, "installed: no") || !strings.Contains(out, "running:   no") {
		t.Fatalf("status after uninstall: %s", out)
	}
	if calls != "" {
		data, _ := os.ReadFile(calls)
		for _, want := range []string{"--user daemon-reload", "--user enable kc-agent.service", "--user restart kc-agent.service", "--user disable --now kc-agent.service"} {
			if !strings.Contains(string(data), want) {
				t.Errorf("systemctl was not called with %q:\n%s", want, data)
			}
		}
	}
}

func TestServiceWithoutUserManager(t *testing.T) {
	e := newCLIEnv(t)
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	calls := fakeSystemctl(t, "", true)
	t.Setenv("PATH", filepath.Dir(calls)+string(os.PathListSeparator)+os.Getenv("PATH"))
	code, _, stderr := e.run("service", "install", "--binary", "/opt/kc/bin/kc-agent")
	if code != exitError || !strings.Contains(stderr, "no systemd user manager is running here") ||
		!strings.Contains(stderr, "first `kc-agent token`") || !strings.Contains(stderr, "kc-agent run") {
		t.Fatalf("install without a user manager: %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(home, ".config", "systemd", "user", "kc-agent.service")); !os.IsNotExist(err) {
		t.Fatal("a unit was written although nothing can run it")
	}
	if code, out, _ := e.run("service", "print", "--binary", "/opt/kc/bin/kc-agent"); code != 0 || !strings.Contains(out, "WantedBy=default.target") {
		t.Fatal("print must work without a user manager")
	}
}

// `service install` of a kc-agent that came with the Python wheel (inside a
// virtualenv) works, and warns that deleting the environment breaks it.
func TestServiceInstallFromAVirtualenvWarns(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the recording systemctl is Linux's")
	}
	e := newCLIEnv(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	unitDir := filepath.Join(home, ".config", "systemd", "user")
	calls := fakeSystemctl(t, unitDir, false)
	t.Setenv("PATH", filepath.Dir(calls)+string(os.PathListSeparator)+os.Getenv("PATH"))
	venv := filepath.Join(home, "venv")
	os.MkdirAll(filepath.Join(venv, "bin"), 0o755)
	os.WriteFile(filepath.Join(venv, "pyvenv.cfg"), []byte("home = /usr/bin\n"), 0o644)
	bin := filepath.Join(venv, "bin", "kc-agent")
	code, _, stderr := e.run("service", "install", "--binary", bin)
	if code != 0 || !strings.Contains(stderr, "warning: the service runs "+bin+", inside the virtualenv "+venv) ||
		!strings.Contains(stderr, "system package") {
		t.Fatalf("install from a venv: %d\n%s", code, stderr)
	}
	if code, _, stderr := e.run("service", "install", "--binary", "/opt/kc/bin/kc-agent"); code != 0 || strings.Contains(stderr, "warning") {
		t.Fatalf("install from /opt: %d\n%s", code, stderr)
	}
}
