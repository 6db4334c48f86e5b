package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// busDaemons are the processes godbus's autolaunch leaves behind (comm,
// which the kernel cuts at 15 bytes).
var busDaemons = map[string]bool{"dbus-daemon": true, "dbus-launch": true, "gnome-keyring-d": true}

// spawnedBuses lists the bus and keyring processes whose environment
// carries marker: those this test's processes started (a daemon
// autolaunched by godbus inherits the environment of the program that
// asked). Other tests' buses don't carry it.
func spawnedBuses(t *testing.T, marker string) []string {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var found []string
	for _, d := range dirs {
		comm, _ := os.ReadFile(filepath.Join(d, "comm"))
		if !busDaemons[strings.TrimSpace(string(comm))] {
			continue
		}
		env, _ := os.ReadFile(filepath.Join(d, "environ"))
		if bytes.Contains(env, []byte(marker)) {
			found = append(found, fmt.Sprintf("%s (pid %s)", strings.TrimSpace(string(comm)), filepath.Base(d)))
		}
	}
	return found
}

// Without DBUS_SESSION_BUS_ADDRESS, as on a JupyterHub server, nothing
// kc-agent does starts a session bus or a keyring daemon: not the agent,
// not `token`, not doctor. doctor doesn't probe a keychain no profile uses;
// with a keychain profile, the keychain is "not available here", with the
// way out (store: file) in the hint. Run as another user, with a marker in
// the environment, to count what this test alone started.
func TestNoSessionBusIsStarted(t *testing.T) {
	setpriv := testenv.OtherUser(t)
	bin := buildBinary(t)
	base, err := os.MkdirTemp("", "kcnb")
	if err != nil {
		t.Fatal(err)
	}
	marker := "KC_AGENT_TEST_MARKER=" + filepath.Base(base)
	t.Cleanup(func() {
		killMarked(marker)
		os.RemoveAll(base)
	})
	home := filepath.Join(base, "h")
	os.Chmod(base, 0o755)
	os.Mkdir(home, 0o700)
	copyTo(t, bin, filepath.Join(base, "kc-agent"))
	bin = filepath.Join(base, "kc-agent")
	cfg := filepath.Join(home, "config.yaml")
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8", marker,
		"KC_AGENT_CONFIG=" + cfg, "KC_AGENT_STATE_DIR=" + filepath.Join(home, "state"),
		"KC_AGENT_SOCK=" + filepath.Join(home, "s", "agent.sock"), "KC_AGENT_NO_AUTOSTART=1",
		"KC_AGENT_SYSTEM_CONFIG=" + filepath.Join(base, "no-system.yaml")}
	asNobody := func(args ...string) (int, string) {
		cmd := exec.Command(setpriv, testenv.AsNobody(append([]string{bin}, args...)...)...)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	// An https issuer nobody serves: doctor's discovery fails at once.
	const fileProfile = "files:\n    issuer: https://127.0.0.1:1/realms/x\n    store: file\n"
	const keychainProfile = "  kc:\n    issuer: https://127.0.0.1:1/realms/x\n"
	for _, phase := range []struct{ name, config string }{
		{"a store: file profile", "profiles:\n  " + fileProfile},
		{"and a keychain profile", "profiles:\n  " + fileProfile + keychainProfile},
	} {
		os.WriteFile(cfg, []byte(phase.config), 0o600)
		os.Chown(home, testenv.Nobody, testenv.Nobody)
		os.Chown(cfg, testenv.Nobody, testenv.Nobody)

		agent := exec.Command(setpriv, testenv.AsNobody(bin, "run")...)
		agent.Env = env
		var agentLog bytes.Buffer
		agent.Stdout, agent.Stderr = &agentLog, &agentLog
		if err := agent.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			if code, _ := asNobody("status"); code == 0 {
				break
			}
			if i > 100 {
				t.Fatalf("%s: the agent did not start:\n%s", phase.name, agentLog.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code, out := asNobody("token", "--profile", "files"); code != exitLoginRequired {
			t.Errorf("%s: token of the file profile: exit %d: %s", phase.name, code, out)
		}
		_, doctor := asNobody("doctor", "--profile", "files")
		if phase.name == "a store: file profile" {
			if !strings.Contains(doctor, "not checked: no profile keeps its token there") {
				t.Errorf("doctor probed a keychain no profile uses:\n%s", doctor)
			}
		} else {
			code, out := asNobody("token", "--profile", "kc")
			if code == 0 || !strings.Contains(out, "no keychain is available here") || !strings.Contains(out, "store: file") {
				t.Errorf("token of the keychain profile: exit %d: %s", code, out)
			}
			if !strings.Contains(doctor, "no keychain is available here") || !strings.Contains(doctor, "store: file") {
				t.Errorf("doctor with a keychain profile:\n%s", doctor)
			}
		}
		agent.Process.Signal(syscall.SIGTERM)
		agent.Wait()
		if got := spawnedBuses(t, marker); len(got) != 0 {
			t.Fatalf("%s: kc-agent started %v", phase.name, got)
		}
	}
}

// killMarked ends what a failing run of the test left behind.
func killMarked(marker string) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, _ := os.ReadFile(filepath.Join(d, "comm"))
		env, _ := os.ReadFile(filepath.Join(d, "environ"))
		if busDaemons[strings.TrimSpace(string(comm))] && bytes.Contains(env, []byte(marker)) {
			var pid int
			fmt.Sscan(filepath.Base(d), &pid)
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
}

func copyTo(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}
