//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/jupyterhub"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// The harness of TestJupyterHub (jupyterhub_test.go): the hub, its two
// users, the system file and the API behind the route.

// hubUser is one analyst: a Linux user of the hub and the Keycloak user
// they sign in as.
type hubUser struct {
	*jupyterhub.User
	kcUser, kcPassword string
	kernel             *jupyterhub.Kernel
}

type hubEnv struct {
	t      *testing.T
	kc     *keycloak.Server
	hub    *jupyterhub.Hub
	bin    string // kc-agent, root-owned, on the users' PATH
	sys    string // the system file (KC_AGENT_SYSTEM_CONFIG)
	api    string // the test API's URL
	rs     *testenv.ResourceServer
	caFile string // the test API's CA, readable by the users
	users  []*hubUser
	procs  *procWatch
}

// requireJupyterHub skips (or, under KC_AGENT_REQUIRE_JUPYTERHUB=1, fails)
// where the test can not run: it creates Linux users, so it needs root.
func requireJupyterHub(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a real JupyterHub; skipped with -short")
	}
	missing := ""
	if os.Getuid() != 0 {
		missing = "needs root (it creates Linux users and spawns their servers)"
	} else {
		for _, tool := range []string{"useradd", "userdel", "chpasswd", "npm", "flock"} {
			if _, err := exec.LookPath(tool); err != nil {
				missing = "needs " + tool
			}
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("KC_AGENT_REQUIRE_JUPYTERHUB") == "1" {
		t.Fatal(missing + " (KC_AGENT_REQUIRE_JUPYTERHUB=1)")
	}
	t.Skip(missing)
}

func newHubEnv(t *testing.T) *hubEnv {
	requireJupyterHub(t)
	// The hub's users read what this test installs for them (kc-agent, the
	// system file, the client, the CA); an in-process agent of an earlier
	// test left this process's umask at the agent's 077.
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	e := &hubEnv{t: t, kc: testenv.Keycloak(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	inst, err := jupyterhub.Install(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := jupyterhub.LockRun(inst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
	if err := jupyterhub.RemoveStaleUsers(); err != nil {
		t.Fatal(err)
	}
	// Everything the users' side reads lives in a root-owned 0755 directory
	// whose ancestors are root's and not writable by others (/run), as an
	// admin's /etc/kc-agent and /usr/local/bin would be.
	run, err := os.MkdirTemp("/run", "kc-agent-jupyterhub-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(run, 0o755)
	t.Cleanup(func() { os.RemoveAll(run) })
	e.bin = e.installBinary(run)
	e.installClient(inst)
	e.serveAPI(run)
	for i, kcu := range []string{"oscar", "peggy"} {
		u, err := jupyterhub.CreateUser(fmt.Sprintf("%s%c", randomSuffix(), 'a'+i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s's agent log (last part): %s", u.Name, readTail(filepath.Join(u.Home, ".local", "state", "kc-agent", "agent.log")))
			}
			if err := u.Remove(); err != nil {
				t.Errorf("removing the test user: %v", err)
			}
		})
		e.users = append(e.users, &hubUser{User: u, kcUser: kcu, kcPassword: kcu + "-pw"})
	}
	e.procs = watchProcs(e.bin, e.users)
	t.Cleanup(e.procs.stop)
	e.sys = filepath.Join(run, "etc", "config.yaml")
	os.MkdirAll(filepath.Dir(e.sys), 0o755)
	layout := e.systemFile()
	if err := os.WriteFile(e.sys, []byte(layout), 0o644); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range e.users {
		names = append(names, u.Name)
	}
	e.hub, err = jupyterhub.Start(ctx, jupyterhub.Options{
		Install: inst, Dir: run, Path: []string{filepath.Dir(e.bin)}, Users: names,
		Env: map[string]string{"KC_AGENT_SYSTEM_CONFIG": e.sys, "SSL_CERT_FILE": e.caFile, "REQUESTS_CA_BUNDLE": e.caFile},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.hub.Stop()
		if t.Failed() {
			t.Logf("the hub's log (last part): %s", readTail(e.hub.Log))
		}
	})
	return e
}

func randomSuffix() string {
	return fmt.Sprintf("%04x", time.Now().UnixNano()&0xffff)
}

// installBinary builds kc-agent into a root-owned directory on the users'
// PATH, as an admin installs it.
func (e *hubEnv) installBinary(run string) string {
	dir := filepath.Join(run, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator), ".").CombinedOutput(); err != nil {
		e.t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "kc-agent")
}

// installClient builds the kc-agent-client wheel of this tree (the pure
// one: the users' kc-agent is the admin's) and installs it into the hub's
// environment, which the users' kernels run from.
func (e *hubEnv) installClient(inst string) {
	root := repoRoot(e.t)
	out := e.t.TempDir()
	if b, err := exec.Command("python3", filepath.Join(root, "scripts", "build-wheels.py"), "--only", "any", "--out", out).CombinedOutput(); err != nil {
		e.t.Fatalf("building the wheel: %v\n%s", err, b)
	}
	wheels, _ := filepath.Glob(filepath.Join(out, "kc_agent_client-*-py3-none-any.whl"))
	if len(wheels) != 1 {
		e.t.Fatalf("build-wheels.py made %v, not one pure wheel", wheels)
	}
	// The users' kernels read what root installs here. An in-process agent
	// of an earlier test left this process's umask at 077 (the agent's),
	// which pip would give the package's files: set 022 for pip alone.
	pip := exec.Command("sh", "-c", `umask 022 && exec "$0" "$@"`, filepath.Join(inst, "venv", "bin", "pip"), "install", "-q", "--disable-pip-version-check", "--no-deps", "--force-reinstall", wheels[0])
	if b, err := pip.CombinedOutput(); err != nil {
		e.t.Fatalf("pip install %s: %v\n%s", filepath.Base(wheels[0]), err, b)
	}
}

// serveAPI runs the API behind the route, over TLS like the README's
// upstream: it accepts only tokens Keycloak signed for it and answers whose
// they are. Its CA goes where the users can read it (the servers get it as
// SSL_CERT_FILE and REQUESTS_CA_BUNDLE, as the README's Spawner.environment
// shows).
func (e *hubEnv) serveAPI(run string) {
	ca := testenv.NewTestCA(e.t)
	pem, err := os.ReadFile(ca.PEMPath)
	if err != nil {
		e.t.Fatal(err)
	}
	e.caFile = filepath.Join(run, "ca.pem")
	if err := os.WriteFile(e.caFile, pem, 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.rs = testenv.StartResourceServer(e.t, ca, e.kc.Issuer(keycloak.RealmTest), "warehouse-api")
	e.api = e.rs.URL
}

// systemExampleRe finds the README's system file: the heredoc of the
// shell block under "System-wide config for everyone".
var systemExampleRe = regexp.MustCompile(`(?s)### System-wide config for everyone.*?tee /etc/kc-agent/config.yaml[^\n]*<<'YAML'\n(.*?)\nYAML\n`)

// readmeSystemFile is the README's example system file, as an admin would
// copy it.
func readmeSystemFile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := systemExampleRe.FindSubmatch(data)
	if m == nil {
		t.Fatal("README.md: no system file example (a `tee /etc/kc-agent/config.yaml <<'YAML'` block under \"System-wide config for everyone\")")
	}
	return string(m[1]) + "\n"
}

var (
	issuerRe   = regexp.MustCompile(`(?m)^(([ \t]*)issuer:[ \t]*)\S+`)
	upstreamRe = regexp.MustCompile(`(?m)^([ \t]*upstream:[ \t]*)\S+`)
)

// systemFile is the README's example with only the addresses of this test's
// Keycloak and API put in, and the test's short idle time.
func (e *hubEnv) systemFile() string {
	f := readmeSystemFile(e.t)
	// The test Keycloak is plain http on loopback, served by root: the
	// issuer needs the opt-in that an https issuer does not.
	f = issuerRe.ReplaceAllString(f, "${1}"+e.kc.Issuer(keycloak.RealmTest)+"\n${2}unsafe_cleartext_issuer: true")
	f = upstreamRe.ReplaceAllString(f, "${1}"+e.api)
	if idleExitRe.MatchString(f) {
		f = idleExitRe.ReplaceAllString(f, "${1}"+idleTime.String())
	} else {
		f += "agent:\n  idle_exit: " + idleTime.String() + "\n"
	}
	return f
}

var (
	storeFileRe  = regexp.MustCompile(`(?m)^[ \t]*store:[ \t]*file\b`)
	listenAutoRe = regexp.MustCompile(`(?m)^[ \t]*listen:[ \t]*auto\b`)
	idleExitRe   = regexp.MustCompile(`(?m)^([ \t]*idle_exit:[ \t]*)\S+`)
)

// procWatch samples the users' processes through the whole test: how many
// agents each user had at once, and whether any session bus or keyring
// daemon ran as them.
type procWatch struct {
	mu        sync.Mutex
	maxAgents map[int]int
	daemons   map[string]bool
	done      chan struct{}
	wg        sync.WaitGroup
	bin       string
	uids      map[int]bool
}

func watchProcs(bin string, users []*hubUser) *procWatch {
	w := &procWatch{maxAgents: map[int]int{}, daemons: map[string]bool{}, done: make(chan struct{}), bin: bin, uids: map[int]bool{}}
	for _, u := range users {
		w.uids[u.UID] = true
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			w.sample()
			select {
			case <-w.done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *procWatch) sample() {
	agents := map[int]int{}
	for _, p := range jupyterhub.Processes(func(p jupyterhub.Proc) bool { return w.uids[p.UID] }) {
		if isAgent(p, w.bin) {
			agents[p.UID]++
		}
		switch p.Comm {
		case "dbus-daemon", "dbus-launch", "gnome-keyring-d":
			w.mu.Lock()
			w.daemons[fmt.Sprintf("%s (uid %d, pid %d)", p.Comm, p.UID, p.PID)] = true
			w.mu.Unlock()
		}
	}
	w.mu.Lock()
	for uid, n := range agents {
		if n > w.maxAgents[uid] {
			w.maxAgents[uid] = n
		}
	}
	w.mu.Unlock()
}

func (w *procWatch) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
}

// isAgent: the admin's kc-agent running `kc-agent run` (the CLI's other
// commands come and go; they are no agents).
func isAgent(p jupyterhub.Proc, bin string) bool {
	return strings.TrimSuffix(p.Exe, " (deleted)") == bin && len(p.Argv) > 1 && p.Argv[1] == "run"
}

// agentPID is the user's running agent, 0 when none runs.
func (e *hubEnv) agentPID(u *hubUser) int {
	procs := jupyterhub.Processes(func(p jupyterhub.Proc) bool { return p.UID == u.UID && isAgent(p, e.bin) })
	if len(procs) == 0 {
		return 0
	}
	return procs[0].PID
}

func readTail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 6000 {
		data = data[len(data)-6000:]
	}
	return string(data)
}

// pyStr is s as a Python string literal.
func pyStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
