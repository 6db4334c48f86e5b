//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// The Python client (clients/python) against the real agent, Keycloak and
// resource server: its unit tests, then a notebook executed by
// `jupyter nbconvert --execute` in a kernel that has no XDG_RUNTIME_DIR and
// no kc-agent variables, so it must find the agent by discovery alone. Once
// with Debian's python3 and its requests/httpx, once in a virtualenv with
// the package and current requests/httpx installed from PyPI by pip.
//
// The agent runs at the default socket location (no KC_AGENT_SOCK): that is
// what a kernel started from anywhere finds.

const debianPython = "/usr/bin/python3"

// pythonInterp is one Python the notebook runs under.
type pythonInterp struct {
	name    string
	python  string
	env     []string // extra environment (PYTHONPATH for the source tree)
	modules string   // where requests and httpx must come from
	client  string   // where kc_agent_client must come from
}

func requirePythonTools(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := os.Stat("/usr/bin/jupyter-nbconvert"); err != nil {
		missing = append(missing, "jupyter-nbconvert")
	}
	for _, m := range []string{"requests", "httpx", "pytest", "ipykernel"} {
		if exec.Command(debianPython, "-c", "import "+m).Run() != nil {
			missing = append(missing, "python3-"+m)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("missing Debian packages %v (scripts/install-test-deps.sh installs them)", missing)
	if os.Getenv("KC_AGENT_REQUIRE_PYTHON") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestPythonClient(t *testing.T) {
	testenv.SecretService(t)
	requirePythonTools(t)
	root := repoRoot(t)
	userHome, _ := os.UserHomeDir()
	e := newCLIEnv(t)
	// The kernel has no KC_AGENT_PROFILE: the profile is "default".
	e.profile = "default"
	// The agent listens where discovery looks first (no KC_AGENT_SOCK);
	// defaultLocation serializes this with the other tests that use it.
	// Config and state stay private to the test, as everywhere else.
	defaultLocation(t, e)
	t.Setenv("KC_AGENT_CONFIG", filepath.Join(e.dir, "config", "config.yaml"))
	t.Setenv("KC_AGENT_STATE_DIR", filepath.Join(e.dir, "state"))
	sock, err := discovery.SocketPath()
	if err != nil {
		t.Fatal(err)
	}
	// Leave the machine as it was: the agent removes its socket, this
	// removes the directory (after the agent stopped: cleanups run last in,
	// first out).
	if _, err := os.Lstat(filepath.Dir(sock)); os.IsNotExist(err) {
		t.Cleanup(func() { os.RemoveAll(filepath.Dir(sock)) })
	}
	kc := e.keycloak()
	e.login(keycloak.RealmShort, "erin", "erin-pw")
	ca := testenv.NewTestCA(t)
	rs := testenv.StartResourceServer(t, ca, kc.Issuer(keycloak.RealmShort), "warehouse-api")
	cfgPath, _ := config.FilePath()
	data, _ := os.ReadFile(cfgPath)
	extra := fmt.Sprintf("routes:\n  - name: warehouse\n    upstream: %s/v1\n    profile: default\nproxy:\n  listen: %s\n  ca_file: %s\n",
		rs.URL, freeAddr(t), ca.PEMPath)
	if err := os.WriteFile(cfgPath, append(data, []byte(extra)...), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := e.startAgent()
	if agent.client.Path != sock {
		t.Fatalf("agent at %s, want %s", agent.client.Path, sock)
	}
	before := refreshCount(t, kc, keycloak.RealmShort, "erin")

	interps := []pythonInterp{
		{name: "debian", python: debianPython, env: []string{"PYTHONPATH=" + filepath.Join(root, "clients", "python", "src")},
			modules: "/usr/lib/python3/dist-packages/", client: filepath.Join(root, "clients", "python", "src", "kc_agent_client")},
		newVenv(t, e, root, filepath.Join(userHome, ".cache", "pip")),
	}
	for _, py := range interps {
		t.Run("unit-"+py.name, func(t *testing.T) {
			// The unit tests never reach the real agent: they point
			// KC_AGENT_SOCK at their own fake (conftest.py).
			cmd := exec.Command(py.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", filepath.Join("clients", "python", "tests"))
			cmd.Dir = root
			cmd.Env = append(os.Environ(), py.env...)
			out, err := cmd.CombinedOutput()
			e.record(string(out))
			if err != nil || !strings.Contains(string(out), " passed") {
				t.Fatalf("pytest with %s: %v\n%s", py.name, err, out)
			}
			t.Logf("pytest (%s): %s", py.name, lastLine(string(out)))
		})
	}
	nbEnv := []string{"NOTEBOOK_EXPECT_SOCK=" + sock, "NOTEBOOK_API=" + rs.URL, "NOTEBOOK_CA=" + ca.PEMPath, "NOTEBOOK_SECONDS=32"}
	for _, py := range interps {
		t.Run("notebook-"+py.name, func(t *testing.T) {
			out := runNotebook(t, e, py, "notebook.ipynb", nbEnv, false)
			text := out.text()
			for _, want := range []string{"200 erin /v1/tables", "failed 0 ", "force_refresh gave a new token: True", "200 /v1/from-httpx", "access_token=<hidden>"} {
				if !strings.Contains(text, want) {
					t.Errorf("notebook output lacks %q:\n%s", want, text)
				}
			}
			for _, m := range []string{"requests", "httpx"} {
				if !strings.Contains(text, py.modules+m+" ") {
					t.Errorf("%s not imported from %s:\n%s", m, py.modules, text)
				}
			}
			if !strings.Contains(text, " "+py.client+"\n") {
				t.Errorf("kc_agent_client not imported from %s:\n%s", py.client, text)
			}
			t.Logf("notebook (%s): %s; %s", py.name, out.line("versions"), out.line("elapsed"))
		})
	}
	refreshes := refreshCount(t, kc, keycloak.RealmShort, "erin") - before
	t.Logf("Keycloak saw %d refresh grants for both notebook runs", refreshes)

	// An administrator ends the session: the next refresh fails, and the
	// notebook gets LoginRequired with the hint, shown as one line.
	if err := kc.Admin().RevokeOfflineSessions(context.Background(), keycloak.RealmShort, "erin"); err != nil {
		t.Fatal(err)
	}
	for _, py := range interps {
		t.Run("revoked-"+py.name, func(t *testing.T) {
			out := runNotebook(t, e, py, "revoked.ipynb", nbEnv, true)
			// In a notebook the hint names the notebook's way out.
			if !strings.Contains(out.text(), "caught LoginRequired; hint: run kc_agent_client.login() in a cell") {
				t.Errorf("no LoginRequired with the hint:\n%s", out.text())
			}
			errs := out.errors()
			if len(errs) != 1 {
				t.Fatalf("want one error output, got %d:\n%s", len(errs), out.text())
			}
			if errs[0].Ename != "LoginRequired" || len(errs[0].Traceback) != 1 ||
				!strings.HasPrefix(errs[0].Traceback[0], "LoginRequired: ") || !strings.Contains(errs[0].Traceback[0], "kc_agent_client.login()") {
				t.Errorf("the error is not one line with the hint: %q %q", errs[0].Ename, errs[0].Traceback)
			}
		})
	}
}

// newVenv makes a virtualenv from Debian's python3 and installs the client
// with its extras from the source tree, as the README says, plus pytest and
// ipykernel to run the tests and the kernel: current versions from PyPI.
func newVenv(t *testing.T, e *cliEnv, root, pipCache string) pythonInterp {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "venv")
	run := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1", "PIP_CACHE_DIR="+pipCache)
		out, err := cmd.CombinedOutput()
		e.record(string(out))
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run(debianPython, "-m", "venv", dir)
	py := filepath.Join(dir, "bin", "python")
	run(py, "-m", "pip", "install", "-q", "./clients/python[requests,httpx]", "pytest", "ipykernel")
	site, err := exec.Command(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").Output()
	if err != nil {
		t.Fatal(err)
	}
	lib := strings.TrimSpace(string(site)) + "/"
	return pythonInterp{name: "venv", python: py, modules: lib, client: lib + "kc_agent_client"}
}

// notebookRun is an executed notebook.
type notebookRun struct {
	Cells []struct {
		Outputs []nbOutput `json:"outputs"`
	} `json:"cells"`
}

type nbOutput struct {
	OutputType string          `json:"output_type"`
	Text       json.RawMessage `json:"text"`
	Data       map[string]any  `json:"data"`
	Ename      string          `json:"ename"`
	Evalue     string          `json:"evalue"`
	Traceback  []string        `json:"traceback"`
}

func (n *notebookRun) text() string {
	var b strings.Builder
	for _, c := range n.Cells {
		for _, o := range c.Outputs {
			var s string
			var lines []string
			if json.Unmarshal(o.Text, &s) == nil {
				b.WriteString(s)
			} else if json.Unmarshal(o.Text, &lines) == nil {
				b.WriteString(strings.Join(lines, ""))
			}
			if o.OutputType == "error" {
				fmt.Fprintf(&b, "[%s: %s]\n%s\n", o.Ename, o.Evalue, strings.Join(o.Traceback, "\n"))
			}
		}
	}
	return b.String()
}

func (n *notebookRun) errors() []nbOutput {
	var out []nbOutput
	for _, c := range n.Cells {
		for _, o := range c.Outputs {
			if o.OutputType == "error" {
				out = append(out, o)
			}
		}
	}
	return out
}

func (n *notebookRun) line(prefix string) string {
	for _, l := range strings.Split(n.text(), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// runNotebook executes clients/python/tests/integration/<name> with
// Debian's nbconvert in a kernel of py, in an environment like a launcher's:
// HOME, a PATH without kc-agent (so the CLI fallback can not hide a
// discovery failure), no XDG_RUNTIME_DIR, no kc-agent or proxy variables.
func runNotebook(t *testing.T, e *cliEnv, py pythonInterp, name string, extraEnv []string, allowErrors bool) *notebookRun {
	t.Helper()
	nb, err := execNotebook(t, e, py, name, extraEnv, allowErrors)
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

// execNotebook is runNotebook for a goroutine of its own: it returns the
// failure instead of ending the test.
func execNotebook(t *testing.T, e *cliEnv, py pythonInterp, name string, extraEnv []string, allowErrors bool) (*notebookRun, error) {
	root := repoRoot(t)
	dir := t.TempDir()
	kdir := filepath.Join(dir, "jupyter", "kernels", "kcpy")
	if err := os.MkdirAll(kdir, 0o700); err != nil {
		return nil, err
	}
	spec, _ := json.Marshal(map[string]any{
		"argv":         []string{py.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"},
		"display_name": "kc-agent test " + py.name, "language": "python",
	})
	if err := os.WriteFile(filepath.Join(kdir, "kernel.json"), spec, 0o600); err != nil {
		return nil, err
	}
	home := filepath.Join(dir, "home")
	os.MkdirAll(home, 0o700)
	args := []string{"nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.kernel_name=kcpy",
		"--ExecutePreprocessor.timeout=300", "--output-dir", dir, "--output", "out.ipynb"}
	if allowErrors {
		args = append(args, "--allow-errors")
	}
	args = append(args, filepath.Join(root, "clients", "python", "tests", "integration", name))
	cmd := exec.Command("/usr/bin/jupyter", args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"HOME=" + home, "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "JUPYTER_PATH=" + filepath.Join(dir, "jupyter")}, py.env...)
	cmd.Env = append(cmd.Env, extraEnv...)
	out, err := cmd.CombinedOutput()
	e.record(string(out))
	raw, rerr := os.ReadFile(filepath.Join(dir, "out.ipynb"))
	e.record(string(raw))
	if err != nil || rerr != nil {
		return nil, fmt.Errorf("nbconvert %s with %s: %v %v\n%s", name, py.name, err, rerr, out)
	}
	var nb notebookRun
	if err := json.Unmarshal(raw, &nb); err != nil {
		return nil, fmt.Errorf("executed notebook: %v", err)
	}
	return &nb, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
