package installers

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func params() Params {
	return Params{
		Binary: "/home/alice/.local/bin/kc-agent",
		Env:    map[string]string{"KC_AGENT_SOCK": "/run/user/1000/kc-agent/agent.sock", "KC_AGENT_CONFIG": "/home/alice/my config/kc-agent.yaml"},
		LogDir: "/Users/alice/Library/Logs/kc-agent",
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from the golden file:\n%s", name, got)
	}
}

func TestSystemdUnitGolden(t *testing.T) {
	unit, err := SystemdUnit(params())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "kc-agent.service.golden", unit)
	for _, want := range []string{"WantedBy=default.target", "Restart=on-failure", "RestartSec=", `Environment="KC_AGENT_SOCK=`, "ExecStart=\"/home/alice/.local/bin/kc-agent\" run"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	if strings.Contains(unit, "multi-user.target") && !strings.Contains(unit, "# A user unit") {
		t.Error("user unit wanted by multi-user.target never starts")
	}
}

// systemd's own verifier, where the machine has it.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	dir := testenv.TempDir(t)
	bin := filepath.Join(dir, "kc-agent")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	p := params()
	p.Binary = bin
	unit, _ := SystemdUnit(p)
	path := filepath.Join(dir, "kc-agent.service")
	os.WriteFile(path, []byte(unit), 0o644)
	run := filepath.Join(dir, "run")
	os.Mkdir(run, 0o700)
	cmd := exec.Command(sa, "verify", "--user", path)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+run)
	out, err := cmd.CombinedOutput()
	// It exits 0 on warnings too (an unknown key is only "ignoring"), so
	// both the exit status and the text are checked.
	text := string(out)
	if err != nil {
		t.Fatalf("systemd-analyze verify failed: %v\n%s", err, text)
	}
	for _, bad := range []string{"Unknown key", "Unknown section", "Invalid", "Failed to parse", "bad-setting", "is not executable"} {
		if strings.Contains(text, bad) {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, text)
		}
	}
	t.Logf("systemd-analyze verify --user: %v %s", err, text)
}

func TestLaunchdPlistGolden(t *testing.T) {
	plist, err := LaunchdPlist(params())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "kc-agent.plist.golden", plist)
	for _, want := range []string{"<key>RunAtLoad</key>", "<key>KeepAlive</key>", "/Users/alice/Library/Logs/kc-agent/agent.log"} {
		if !strings.Contains(plist, want) {
			t.Errorf("plist lacks %q", want)
		}
	}
	if _, err := exec.LookPath("xmllint"); err == nil {
		path := filepath.Join(testenv.TempDir(t), "p.plist")
		os.WriteFile(path, []byte(plist), 0o644)
		if out, err := exec.Command("xmllint", "--noout", path).CombinedOutput(); err != nil {
			t.Fatalf("plist is not well-formed XML: %s", out)
		}
	}
}

func TestWindowsRunCommand(t *testing.T) {
	bin := `C:\Users\alice\AppData\Local\Programs\kc-agent\kc-agent.exe`
	got, err := WindowsRunCommand(Params{Binary: bin})
	if err != nil || got != `"C:\Users\alice\AppData\Local\Programs\kc-agent\kc-agent.exe" run` {
		t.Fatalf("got %q %v", got, err)
	}
	got, _ = WindowsRunCommand(Params{Binary: `\\server\tools\kc-agent.exe`, LogDir: `C:\Users\a\AppData\Local\kc-agent`})
	if got != `"\\server\tools\kc-agent.exe" run --log-file "C:\Users\a\AppData\Local\kc-agent\agent.log"` {
		t.Fatalf("with a log dir: %q", got)
	}
	for _, bad := range []Params{{Binary: "/abs/kc-agent"}, {Binary: `kc-agent.exe`}, {Binary: `C:kc-agent.exe`},
		{Binary: `C:\a"b\kc-agent.exe`}, {Binary: bin, LogDir: `logs`}} {
		if got, err := WindowsRunCommand(bad); err == nil {
			t.Errorf("%+v accepted: %q", bad, got)
		}
	}
	if _, err := SystemdUnit(Params{Binary: "kc-agent"}); err == nil {
		t.Fatal("relative binary accepted")
	}
}

func TestStableBinary(t *testing.T) {
	for in, want := range map[string]string{
		"/opt/homebrew/Cellar/kc-agent/1.2.3/bin/kc-agent": "/opt/homebrew/bin/kc-agent",
		"/usr/local/Cellar/kc-agent/1.2.3/bin/kc-agent":    "/usr/local/bin/kc-agent",
		"/home/alice/.local/bin/kc-agent":                  "/home/alice/.local/bin/kc-agent",
	} {
		if got := StableBinary(in); got != want {
			t.Errorf("%s: got %s", in, got)
		}
	}
}

// The deb/rpm ship the unit rendered for /usr/bin/kc-agent; it must stay the
// same template output as `service install` writes.
func TestPackagedUnitGolden(t *testing.T) {
	unit, err := SystemdUnit(Params{Binary: "/usr/bin/kc-agent"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("packaging", "kc-agent.service")
	if *update {
		os.WriteFile(path, []byte(unit), 0o644)
	}
	want, _ := os.ReadFile(path)
	if unit != string(want) {
		t.Fatalf("%s is stale; run go test ./installers -update", path)
	}
}

// A binary from the kc-agent-client wheel lives in a virtualenv or a conda
// environment, which users delete: the service install warns about it.
func TestPythonEnv(t *testing.T) {
	dir := testenv.TempDir(t)
	venv, conda, plain := filepath.Join(dir, "venv"), filepath.Join(dir, "conda"), filepath.Join(dir, "plain")
	for _, d := range []string{filepath.Join(venv, "bin"), filepath.Join(conda, "bin"), filepath.Join(conda, "conda-meta"), filepath.Join(plain, "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(venv, "pyvenv.cfg"), []byte("home = /usr/bin\n"), 0o644)
	for bin, want := range map[string][2]string{
		filepath.Join(venv, "bin", "kc-agent"):  {venv, "virtualenv"},
		filepath.Join(conda, "bin", "kc-agent"): {conda, "conda environment"},
		filepath.Join(plain, "bin", "kc-agent"): {"", ""},
	} {
		if d, k := PythonEnv(bin); d != want[0] || k != want[1] {
			t.Errorf("%s: got %q %q, want %q", bin, d, k, want)
		}
	}
}
