//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

// One pip install: the host's platform wheel, installed with pip into a
// fresh virtualenv, is all a notebook needs. With no agent running and no
// kc-agent on PATH, login() starts the kc-agent the wheel brought (the
// administrator's system-wide file names the issuer and the route), the
// sign-in is approved from "another device", and the notebook gets a
// token and reads through the route.
func TestWheelNotebookSignIn(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skip("no wheel for " + runtime.GOARCH)
	}
	testenv.SecretService(t)
	requirePythonTools(t)
	root := repoRoot(t)
	e := newCLIEnv(t)
	e.profile = "default"
	defaultLocation(t, e) // the autostarted agent listens at the default place
	kc := e.keycloak()
	ca := testenv.NewTestCA(t)
	rs := testenv.StartResourceServer(t, ca, kc.Issuer(keycloak.RealmTest), "warehouse-api")
	sys := systemConfig(t, fmt.Sprintf("profiles:\n  default:\n    issuer: %s\nroutes:\n  - name: warehouse\n    upstream: %s/v1\nproxy:\n  listen: %s\n  ca_file: %s\n",
		kc.Issuer(keycloak.RealmTest), rs.URL, freeAddr(t), ca.PEMPath))

	dir := t.TempDir()
	if out, err := exec.Command(debianPython, filepath.Join(root, "scripts", "build-wheels.py"), "--out", filepath.Join(dir, "wheels"), "--only", "host").CombinedOutput(); err != nil {
		t.Fatalf("build-wheels: %v\n%s", err, out)
	}
	wheels, _ := filepath.Glob(filepath.Join(dir, "wheels", "kc_agent_client-*-py3-none-*linux*.whl"))
	if len(wheels) != 1 {
		t.Fatalf("wheels: %v", wheels)
	}
	venv := filepath.Join(dir, "venv")
	// Debian's python3, so the kernel finds ipykernel and requests there;
	// kc-agent-client comes from the wheel alone.
	if out, err := exec.Command(debianPython, "-m", "venv", "--system-site-packages", venv).CombinedOutput(); err != nil {
		t.Fatalf("venv: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(venv, "bin", "pip"), "install", "-q", "--no-index", "--no-deps", wheels[0]).CombinedOutput(); err != nil {
		t.Fatalf("pip install: %v\n%s", err, out)
	}
	bundled := filepath.Join(venv, "bin", "kc-agent")

	ap := startApprover(e)
	py := pythonInterp{name: "wheel", python: filepath.Join(venv, "bin", "python")}
	// A desktop session's kernel: its D-Bus session (the keychain) and,
	// standing in for /etc/kc-agent/config.yaml, the system file's path.
	nb := runNotebook(t, e, py, "wheel.ipynb", []string{"DBUS_SESSION_BUS_ADDRESS=" + os.Getenv("DBUS_SESSION_BUS_ADDRESS"), "KC_AGENT_SYSTEM_CONFIG=" + sys}, false)
	c, err := ipc.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(context.Background())
	if err == nil {
		defer func() {
			if p, err := os.FindProcess(st.PID); err == nil {
				p.Signal(os.Interrupt)
			}
			for i := 0; i < 50 && c.Health(context.Background()) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}
	text := nb.text()
	for _, want := range []string{"agent_path: " + bundled, "signed in as carol", "200 carol /v1/tables", "access_token=<hidden>"} {
		if !strings.Contains(text, want) {
			t.Errorf("notebook output lacks %q:\n%s", want, text)
		}
	}
	if err != nil {
		t.Fatalf("no agent after the notebook: %v", err)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", st.PID)); exe != bundled {
		t.Errorf("the agent runs %q, not the wheel's %s", exe, bundled)
	}
	if n, errs := ap.result(); n != 1 || len(errs) > 0 {
		t.Errorf("approvals: %d, errors %v", n, errs)
	}
}
