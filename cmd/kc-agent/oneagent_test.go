//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// The tests in this file use the default, uid-keyed agent location (no
// KC_AGENT_SOCK), like a real user. Only one test on the machine may do
// that at a time, across packages and checkouts: defaultLocation takes a
// machine-wide lock for the test's duration.

// defaultLocation makes e an installation at the default places: HOME is a
// fresh directory, and no KC_AGENT_* or XDG_* variable is set.
func defaultLocation(t *testing.T, e *cliEnv) (home string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kc-agent-test-default-location.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() })
	// The harness finds Keycloak, its cache and the Maven repository
	// through HOME: pin them before HOME changes.
	if os.Getenv("KC_AGENT_TEST_CACHE") == "" {
		cache, err := keycloak.CacheDir()
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("KC_AGENT_TEST_CACHE", cache)
	}
	if os.Getenv("KC_AGENT_M2_REPO") == "" {
		if h, err := os.UserHomeDir(); err == nil {
			t.Setenv("KC_AGENT_M2_REPO", filepath.Join(h, ".m2", "repository"))
		}
	}
	home = filepath.Join(e.dir, "home")
	os.MkdirAll(home, 0o700)
	t.Setenv("HOME", home)
	for _, k := range []string{"KC_AGENT_SOCK", "KC_AGENT_CONFIG", "KC_AGENT_STATE_DIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"} {
		t.Setenv(k, "")
	}
	cands, _ := discovery.Candidates()
	for _, c := range cands {
		if ipc.NewClientAt(c).Health(context.Background()) == nil {
			t.Fatalf("an agent already runs at the default location %s; stop it before running the tests", c)
		}
	}
	// The test session's keychain is shared by every test of the run: a
	// login an earlier test left for the profile would make this one start
	// signed in (login() then returns at once). Only where a session bus
	// runs: a keychain call without one would start a bus.
	for _, name := range []string{e.profile, "default"} {
		if name != "" && os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
			keyring.Delete(store.Service, store.Account(name))
		}
	}
	// A foreign directory left behind by an earlier run of the plant test.
	for _, c := range cands {
		if err := discovery.CheckSocketDir(filepath.Dir(c)); err != nil && !os.IsNotExist(err) {
			os.RemoveAll(filepath.Dir(c))
		}
	}
	return home
}

// agentPIDs lists the `kc-agent run` processes of bin.
func agentPIDs(bin string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		exe, _ := os.Readlink(filepath.Join("/proc", d.Name(), "exe"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
		if len(args) >= 2 && args[1] == "run" && exe == bin {
			pid, _ := strconv.Atoi(d.Name())
			pids = append(pids, pid)
		}
	}
	return pids
}

// runBin runs the real binary with env, recording its stderr for the leak
// check; stdout is returned (and, for token, remembered as a secret).
func (e *cliEnv) runBin(env []string, bin string, args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && cmd.ProcessState == nil {
		e.t.Fatalf("running %s: %v", bin, err)
	}
	e.mu.Lock()
	e.outputs = append(e.outputs, errb.String())
	if len(args) == 0 || args[0] != "token" {
		e.outputs = append(e.outputs, out.String())
	}
	e.mu.Unlock()
	if len(args) > 0 && args[0] == "token" {
		e.addSecret(strings.TrimSpace(out.String()))
	}
	return code, out.String(), errb.String()
}

// With refresh-token rotation on (reuse 0, 10 s tokens), an agent started
// from a desktop-like environment and `kc-agent token` called every 2 s
// from both that environment and a cron-like one (env -i HOME PATH) share
// one agent: no second agent, no failed call, no refresh error at
// Keycloak, and the session is alive afterwards. A second `kc-agent run`
// with another socket refuses; after the agent is killed -9, a new one
// starts (the lock died with it).
func TestOneAgentAcrossEnvironments(t *testing.T) {
	testenv.SecretService(t)
	bin := buildBinary(t) // before HOME moves: go finds its caches through it
	e := newCLIEnv(t)
	home := defaultLocation(t, e)
	kc := e.keycloak()
	const user = "judy"
	e.login(keycloak.RealmRotation, user, user+"-pw")
	errorsBefore, err := kc.Admin().CountEvents(context.Background(), keycloak.RealmRotation, "REFRESH_TOKEN_ERROR", user)
	if err != nil {
		t.Fatal(err)
	}
	runtimeDir := filepath.Join(e.dir, "xdg-runtime")
	os.MkdirAll(runtimeDir, 0o700)
	desktop := append(os.Environ(), "XDG_RUNTIME_DIR="+runtimeDir, "KC_AGENT_NO_AUTOSTART=")
	cron := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}

	agent := exec.Command(bin, "run", "--log-level", "debug")
	agent.Env = desktop
	logPath := filepath.Join(e.dir, "agent.log")
	logFile, _ := os.Create(logPath)
	agent.Stdout, agent.Stderr = logFile, logFile
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	logFile.Close()
	stopAgent := func(sig os.Signal) {
		agent.Process.Signal(sig)
		agent.Wait()
	}
	t.Cleanup(func() {
		stopAgent(syscall.SIGTERM)
		for _, pid := range agentPIDs(bin) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		data, _ := os.ReadFile(logPath)
		e.mu.Lock()
		e.outputs = append(e.outputs, string(data))
		e.mu.Unlock()
	})
	c, err := ipc.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return c.Health(context.Background()) == nil }, "the agent to answer at the default location")

	// Five token lifetimes and a bit.
	deadline := time.Now().Add(55 * time.Second)
	calls := 0
	for time.Now().Before(deadline) {
		for name, env := range map[string][]string{"desktop": desktop, "cron": cron} {
			code, out, stderr := e.runBin(env, bin, "token", "--profile", e.profile, "--min-valid", "5s")
			calls++
			if code != 0 || len(strings.TrimSpace(out)) < 100 {
				t.Fatalf("call %d from the %s environment: exit %d: %s", calls, name, code, stderr)
			}
		}
		if pids := agentPIDs(bin); len(pids) != 1 {
			t.Fatalf("%d agent processes after %d calls: %v", len(pids), calls, pids)
		}
		time.Sleep(2 * time.Second)
	}

	// A second agent with another explicit socket refuses to start.
	other := filepath.Join(e.dir, "other")
	second := exec.Command(bin, "run")
	second.Env = append(slicesClone(desktop), "KC_AGENT_SOCK="+filepath.Join(other, "agent.sock"))
	var secondErr bytes.Buffer
	second.Stderr = &secondErr
	done := make(chan error, 1)
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(secondErr.String(), "already runs for this user") {
			t.Fatalf("second agent: %v: %s", err, secondErr.String())
		}
		if !strings.Contains(secondErr.String(), fmt.Sprintf("pid %d", agent.Process.Pid)) {
			t.Fatalf("the refusal does not name the running agent: %s", secondErr.String())
		}
	case <-time.After(30 * time.Second):
		second.Process.Kill()
		t.Fatal("a second agent with another socket kept running")
	}

	// Nor does one with another socket and another state directory (and so
	// another lock): it finds the running agent at the default place.
	tctx, tcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer tcancel()
	third := exec.CommandContext(tctx, bin, "run")
	third.Env = append(slicesClone(desktop), "KC_AGENT_SOCK="+filepath.Join(other, "agent.sock"), "KC_AGENT_STATE_DIR="+filepath.Join(e.dir, "state2"))
	if out, err := third.CombinedOutput(); err == nil || !strings.Contains(string(out), "already runs for this user") {
		t.Fatalf("an agent with its own socket and state directory: %v: %s", err, out)
	}

	// The session is alive: a forced refresh works at Keycloak.
	if code, _, stderr := e.runBin(cron, bin, "token", "--profile", e.profile, "--force-refresh"); code != 0 {
		t.Fatalf("forced refresh after the run: exit %d: %s", code, stderr)
	}
	errorsAfter, _ := kc.Admin().CountEvents(context.Background(), keycloak.RealmRotation, "REFRESH_TOKEN_ERROR", user)
	if errorsAfter != errorsBefore {
		t.Fatalf("Keycloak logged %d REFRESH_TOKEN_ERROR events", errorsAfter-errorsBefore)
	}

	// A notebook kernel without XDG_RUNTIME_DIR finds the same agent.
	if jupyter, err := exec.LookPath("jupyter"); err == nil {
		nb := filepath.Join(e.dir, "find-agent.ipynb")
		os.WriteFile(nb, []byte(notebookJSON(fmt.Sprintf(`import subprocess
out = subprocess.run([%q, "token", "--profile", %q], capture_output=True, text=True)
assert out.returncode == 0, out.stderr
assert len(out.stdout.strip()) > 100
print("token ok")`, bin, e.profile))), 0o600)
		cmd := exec.Command(jupyter, "nbconvert", "--to", "notebook", "--execute", "--output", filepath.Join(e.dir, "out.ipynb"), nb)
		cmd.Env = append(slicesClone(cron), "JUPYTER_RUNTIME_DIR="+filepath.Join(e.dir, "jr"), "JUPYTER_DATA_DIR="+filepath.Join(e.dir, "jd"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("notebook without XDG_RUNTIME_DIR: %v\n%s", err, out)
		}
		res, _ := os.ReadFile(filepath.Join(e.dir, "out.ipynb"))
		if !bytes.Contains(res, []byte("token ok")) {
			t.Fatal("the notebook did not get a token")
		}
		if pids := agentPIDs(bin); len(pids) != 1 {
			t.Fatalf("%d agents after the notebook", len(pids))
		}
	} else if os.Getenv("KC_AGENT_REQUIRE_JUPYTER") == "1" {
		t.Fatal("jupyter is not installed")
	}

	// kill -9: the lock dies with the process, and the next agent starts.
	stopAgent(syscall.SIGKILL)
	next := exec.Command(bin, "run")
	next.Env = desktop // as the service manager would start it: with the session bus
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { next.Process.Signal(syscall.SIGTERM); next.Wait() })
	waitFor(t, func() bool { return c.Health(context.Background()) == nil }, "a new agent after kill -9")
	if code, _, stderr := e.runBin(cron, bin, "token", "--profile", e.profile); code != 0 {
		t.Fatalf("token from the restarted agent: exit %d: %s", code, stderr)
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// notebookJSON is a one-cell notebook.
func notebookJSON(code string) string {
	lines := strings.Split(code, "\n")
	var src []string
	for i, l := range lines {
		if i < len(lines)-1 {
			l += "\n"
		}
		src = append(src, strconv.Quote(l))
	}
	return `{"cells":[{"cell_type":"code","execution_count":null,"metadata":{},"outputs":[],"source":[` + strings.Join(src, ",") +
		`]}],"metadata":{"kernelspec":{"display_name":"Python 3","language":"python","name":"python3"}},"nbformat":4,"nbformat_minor":5}`
}

// asNobody runs a Python program as uid 65534 and returns it running.
func asNobody(t *testing.T, program string, args ...string) *exec.Cmd {
	t.Helper()
	setpriv := testenv.OtherUser(t)
	cmd := exec.Command(setpriv, testenv.AsNobody(append([]string{"/usr/bin/python3", "-c", program}, args...)...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if testing.Verbose() && stderr.Len() > 0 {
			t.Logf("nobody's program said: %s", stderr.String())
		}
	})
	return cmd
}

// fakeAgent serves a "token" on a Unix socket at argv[1] (creating its
// directory 0755 first, as an attacker would) and appends every request
// line to argv[2].
const fakeAgent = `
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
os.chmod(os.path.dirname(path), 0o755)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o777)
s.listen(8)
open(path + ".ready", "w").close()
while True:
    c, _ = s.accept()
    data = c.recv(65536)
    if not data:
        c.close()
        continue
    with open(log, "ab") as f:
        f.write(data.split(b"\r\n")[0] + b"\n")
    body = b'{"access_token":"eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.","token_type":"Bearer","expires_in":300,"ok":true}'
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    c.close()
`

// Another user who creates the agent's directory first, with a fake agent
// in it, gets nothing: token, env and exec refuse with exit 3, name the
// path and its owner, start no agent, and send the fake no request.
func TestPlantedSocketDirectoryRefused(t *testing.T) {
	bin := buildBinary(t) // before HOME moves: go finds its caches through it
	e := newCLIEnv(t)
	defaultLocation(t, e)
	cands, _ := discovery.Candidates()
	planted := cands[len(cands)-1] // /tmp/kc-agent-<uid>/agent.sock: where anyone can create it
	dir := filepath.Dir(planted)
	os.RemoveAll(dir)
	t.Cleanup(func() { os.RemoveAll(dir) })
	logDir, _ := os.MkdirTemp("", "kcp")
	t.Cleanup(func() { os.RemoveAll(logDir) })
	os.Chmod(logDir, 0o777)
	reqLog := filepath.Join(logDir, "requests.log")
	asNobody(t, fakeAgent, planted, reqLog)
	waitFor(t, func() bool { _, err := os.Stat(planted + ".ready"); return err == nil }, "the fake agent")
	t.Setenv("KC_AGENT_NO_AUTOSTART", "") // autostart allowed: it must still not happen

	for _, args := range [][]string{
		{"token"},
		{"env"},
		{"exec", "--", "true"},
		{"status"},
	} {
		code, stdout, stderr := e.run(args...)
		if code != exitUnreachable {
			t.Errorf("%v: exit %d, want 3: %s", args, code, stderr)
		}
		if stdout != "" {
			t.Errorf("%v printed %d bytes on stdout", args, len(stdout))
		}
		if !strings.Contains(stderr, dir) || !strings.Contains(stderr, "uid 65534") {
			t.Errorf("%v: the error does not name the directory and its owner: %s", args, stderr)
		}
	}
	// The same through the real program, as a process of its own.
	for _, args := range [][]string{{"token"}, {"token", "--format", "header"}} {
		code, stdout, stderr := e.runBin(os.Environ(), bin, args...)
		if code != exitUnreachable || stdout != "" || !strings.Contains(stderr, "uid 65534") {
			t.Errorf("process %v: exit %d, %d bytes on stdout: %s", args, code, len(stdout), stderr)
		}
	}
	if data, _ := os.ReadFile(reqLog); len(data) > 0 {
		t.Fatalf("requests reached the fake agent: %s", data)
	}
	if pids := append(agentPIDs(mustExecutable(t)), agentPIDs(bin)...); len(pids) > 0 {
		t.Fatalf("an agent was autostarted: %v", pids)
	}
	// doctor says what is wrong and what to do.
	_, out, _ := e.run("doctor")
	if !strings.Contains(out, "FAIL  socket directory") || !strings.Contains(out, "belongs to uid 65534") {
		t.Fatalf("doctor does not flag the foreign directory:\n%s", out)
	}
}

func mustExecutable(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// A socket in our own private directory, but served by another user's
// process (moved there by root, say), is refused on the peer uid alone.
func TestForeignPeerRefused(t *testing.T) {
	bin := buildBinary(t)
	e := newCLIEnv(t)
	nobodyDir, _ := os.MkdirTemp("", "kcn")
	t.Cleanup(func() { os.RemoveAll(nobodyDir) })
	os.Chown(nobodyDir, 65534, 65534)
	served := filepath.Join(nobodyDir, "d", "agent.sock")
	reqLog := filepath.Join(nobodyDir, "requests.log")
	os.WriteFile(reqLog, nil, 0o666)
	os.Chmod(reqLog, 0o666)
	asNobody(t, fakeAgent, served, reqLog)
	waitFor(t, func() bool { _, err := os.Stat(served + ".ready"); return err == nil }, "the fake agent")
	sock := os.Getenv("KC_AGENT_SOCK")
	os.MkdirAll(filepath.Dir(sock), 0o700)
	if err := os.Rename(served, sock); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := e.run("token")
	if code != exitUnreachable || stdout != "" || !strings.Contains(stderr, "runs as uid 65534") {
		t.Fatalf("token from a foreign peer: exit %d %q %s", code, stdout, stderr)
	}
	// The same through the real program, as a process of its own.
	code, stdout, stderr = e.runBin(os.Environ(), bin, "token")
	if code != exitUnreachable || stdout != "" || !strings.Contains(stderr, "runs as uid 65534") {
		t.Fatalf("process: token from a foreign peer: exit %d, %d bytes on stdout: %s", code, len(stdout), stderr)
	}
	if data, _ := os.ReadFile(reqLog); len(data) > 0 {
		t.Fatalf("a request reached the foreign peer: %s", data)
	}
}

// squatter listens on argv[1]:argv[2] and appends what it receives to
// argv[3].
const squatter = `
import socket, sys, threading
host, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(16)
open(log + ".ready", "w").close()
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            return
        with open(log, "ab") as f:
            f.write(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`

// Another user binds the proxy port first: the agent reports who holds
// it, env and exec refuse instead of pointing programs at the squatter,
// doctor flags it, and not one byte reaches the squatter.
func TestSquattedProxyPort(t *testing.T) {
	e := newCLIEnv(t)
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	logDir, _ := os.MkdirTemp("", "kcq")
	t.Cleanup(func() { os.RemoveAll(logDir) })
	os.Chmod(logDir, 0o777)
	bytesLog := filepath.Join(logDir, "received")
	asNobody(t, squatter, host, port, bytesLog)
	waitFor(t, func() bool { _, err := os.Stat(bytesLog + ".ready"); return err == nil }, "the squatter")
	cfg := fmt.Sprintf(`profiles:
  default:
    issuer: https://sso.example.com/realms/work
routes:
  - name: warehouse
    upstream: https://warehouse.example.com/api
proxy:
  listen: %s
`, addr)
	os.MkdirAll(filepath.Dir(os.Getenv("KC_AGENT_CONFIG")), 0o700)
	os.WriteFile(os.Getenv("KC_AGENT_CONFIG"), []byte(cfg), 0o600)
	e.startAgent()

	code, out, stderr := e.run("status")
	if !strings.Contains(out, "proxy:   WAITING for its address") || !strings.Contains(out, "taken by uid 65534") {
		t.Fatalf("status does not show the squatted port (exit %d):\n%s%s", code, out, stderr)
	}
	for _, args := range [][]string{{"env"}, {"exec", "--", "sh", "-c", "echo $HTTPS_PROXY"}} {
		code, out, stderr := e.run(args...)
		if code != exitError || strings.Contains(out, addr) || !strings.Contains(stderr, "taken by uid 65534") {
			t.Errorf("%v with a squatted port: exit %d, stdout %q, stderr %s", args, code, out, stderr)
		}
	}
	_, out, _ = e.run("doctor")
	if !strings.Contains(out, "FAIL  proxy") || !strings.Contains(out, "taken by uid 65534") {
		t.Errorf("doctor does not flag the squatted port:\n%s", out)
	}
	if data, _ := os.ReadFile(bytesLog); len(data) > 0 {
		t.Fatalf("%d bytes reached the squatter", len(data))
	}
}

// With no routes configured, env prints no proxy variables (and says why
// on stderr); with routes, it prints a proxy that answers. Both checked
// with eval and a real curl.
func TestEnvEvalThenCurl(t *testing.T) {
	e := newCLIEnv(t)
	plain, seen := testenv.PlainServer(t)
	bin := buildBinary(t)
	os.MkdirAll(filepath.Dir(os.Getenv("KC_AGENT_CONFIG")), 0o700)
	os.WriteFile(os.Getenv("KC_AGENT_CONFIG"), []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/work\n"), 0o600)
	e.startAgent()
	script := fmt.Sprintf(`set -e; eval "$(%s env)"; env | grep -c PROXY || true; curl -sS -f %s/direct`, bin, plain)
	cmd := exec.Command("bash", "-c", script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || !strings.HasPrefix(string(out), "0\n") || !strings.HasSuffix(string(out), "plain ok") {
		t.Fatalf("eval with no proxy, then curl: %v %q %s", err, out, stderr.String())
	}
	if !strings.Contains(stderr.String(), "no proxy is configured") {
		t.Fatalf("env did not say why there are no proxy variables: %s", stderr.String())
	}
	if len(seen()) != 1 {
		t.Fatal("curl did not reach the server")
	}
	// With a route the proxy runs, and what env prints answers.
	os.WriteFile(os.Getenv("KC_AGENT_CONFIG"), []byte(fmt.Sprintf(`profiles:
  default:
    issuer: https://sso.example.com/realms/work
proxy:
  listen: 127.0.0.1:0
routes:
  - name: local
    upstream: %s
`, plain)), 0o600)
	c := ipc.NewClientAt(os.Getenv("KC_AGENT_SOCK"))
	waitFor(t, func() bool { ps, err := c.Proxy(context.Background()); return err == nil && ps.Running }, "the proxy to start after the config change")
	// Through the printed proxy, explicitly: a missing HTTP_PROXY fails
	// here rather than letting curl go direct.
	script = fmt.Sprintf(`set -e; eval "$(%s env)"; [ -n "$HTTP_PROXY" ] || exit 9; curl -sS -o /dev/null -w '%%{http_code}' -x "$HTTP_PROXY" --noproxy '' %s/through`, bin, plain)
	out, err = exec.Command("bash", "-c", script).Output()
	if err != nil || string(out) != "200" {
		t.Fatalf("eval with a proxy, then curl through it: %v %q", err, out)
	}
	if n := len(seen()); n != 2 {
		t.Fatalf("the request through the proxy did not arrive (%d requests)", n)
	}
}
