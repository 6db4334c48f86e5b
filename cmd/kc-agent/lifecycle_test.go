//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// lifecycleEnv is a logged-in installation whose agent a client autostarts
// from a notebook-like environment (a JupyterHub API token in it).
type lifecycleEnv struct {
	*cliEnv
	bin string
	env []string
}

const hubSecret = "hub-api-token-that-must-not-leak-4711"

func newLifecycleEnv(t *testing.T, agentYAML string) *lifecycleEnv {
	return newLifecycleEnvAs(t, keycloak.RealmTest, "carol", agentYAML)
}

func newLifecycleEnvAs(t *testing.T, realm, user, agentYAML string) *lifecycleEnv {
	testenv.SecretService(t)
	notAtDefaultLocation(t)
	bin := buildBinary(t)
	e := newCLIEnv(t)
	e.login(realm, user, user+"-pw")
	path := os.Getenv("KC_AGENT_CONFIG")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, []byte("\n"+agentYAML)...), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(slices.Clone(os.Environ()), "KC_AGENT_NO_AUTOSTART=", "KC_AGENT_TEST_MARK=kept",
		"JUPYTERHUB_API_TOKEN="+hubSecret, "JPY_API_TOKEN="+hubSecret, "AWS_SECRET_ACCESS_KEY="+hubSecret,
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	l := &lifecycleEnv{cliEnv: e, bin: bin, env: env}
	t.Cleanup(func() {
		for _, pid := range agentPIDs(bin) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		data, _ := os.ReadFile(filepath.Join(os.Getenv("KC_AGENT_STATE_DIR"), "agent.log"))
		e.record(string(data))
		if t.Failed() {
			t.Logf("agent log:\n%s", data)
		}
	})
	return l
}

// token runs `kc-agent token` as the notebook would (autostart allowed).
func (l *lifecycleEnv) token() {
	l.t.Helper()
	code, out, stderr := l.runBin(l.env, l.bin, "token", "--profile", l.profile)
	if code != 0 || len(strings.TrimSpace(out)) < 100 {
		l.t.Fatalf("kc-agent token: exit %d: %s", code, stderr)
	}
}

// onlyAgent is the pid of the one agent of this binary.
func (l *lifecycleEnv) onlyAgent() int {
	l.t.Helper()
	pids := agentPIDs(l.bin)
	if len(pids) != 1 {
		l.t.Fatalf("%d agent processes, want 1: %v", len(pids), pids)
	}
	return pids[0]
}

// waitGone polls until the process has exited; how long that took is not
// the point (the unit tests check the timing in virtual time).
func (l *lifecycleEnv) waitGone(pid int, what string) {
	l.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for processRuns(pid) && !zombie(pid) {
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: the agent (pid %d) is still running", what, pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// zombie: an exited child of this test not yet reaped counts as gone.
func zombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(data, ')')
	return i > 0 && i+2 < len(data) && data[i+2] == 'Z'
}

// An autostarted agent keeps KC_AGENT_* and drops the notebook's secrets;
// with agent.idle_exit: 3s it ends when nobody uses it, releasing lock and
// socket; the next `kc-agent token`, and the Python client's get_token(),
// start it again from the stored login (no sign-in: the browser hook is
// gone).
func TestAutostartedAgentIdlesOutAndComesBack(t *testing.T) {
	l := newLifecycleEnv(t, "agent:\n  idle_exit: 3s\n")
	openURLHook = func(string) error { return fmt.Errorf("no sign-in may start in this test") }
	l.token()
	pid := l.onlyAgent()

	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.Split(string(environ), "\x00")
	for _, v := range vars {
		if strings.Contains(v, hubSecret) {
			t.Errorf("the autostarted agent inherited %s", strings.SplitN(v, "=", 2)[0])
		}
	}
	for _, want := range []string{"KC_AGENT_TEST_MARK=kept", "KC_AGENT_CONFIG=" + os.Getenv("KC_AGENT_CONFIG"), "HOME=" + os.Getenv("HOME")} {
		if !slices.Contains(vars, want) {
			t.Errorf("the autostarted agent's environment lacks %s", want)
		}
	}
	st := l.status()
	if !st.Autostarted || st.IdleExit != "3s" {
		t.Fatalf("status: autostarted %v, idle_exit %q; want true, 3s", st.Autostarted, st.IdleExit)
	}

	l.waitGone(pid, "idle exit")
	lock, _ := discovery.LockPath()
	if h := lockHolderPID(lock); h != 0 {
		t.Fatalf("the lock is still held (by pid %d) after the idle exit", h)
	}
	if _, err := os.Lstat(os.Getenv("KC_AGENT_SOCK")); !os.IsNotExist(err) {
		t.Fatalf("the socket is still there after the idle exit: %v", err)
	}

	l.token()
	again := l.onlyAgent()
	if again == pid {
		t.Fatal("the same agent answered after it exited")
	}
	l.waitGone(again, "second idle exit")

	// The client needs nothing but the standard library.
	py := exec.Command(debianPython, "-c", fmt.Sprintf(`from kc_agent_client import get_token
print(len(get_token(%q)))`, l.profile))
	py.Env = append(slices.Clone(l.env), "PYTHONPATH="+filepath.Join(repoRoot(t), "clients", "python", "src"))
	out, err := py.CombinedOutput()
	l.record(string(out))
	if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); err != nil || n < 100 {
		t.Fatalf("get_token() after the idle exit: %v: %s", err, out)
	}
	l.onlyAgent()
}

func (l *lifecycleEnv) status() *ipc.StatusResponse {
	l.t.Helper()
	c, err := ipc.NewClient()
	if err != nil {
		l.t.Fatal(err)
	}
	st, err := c.Status(context.Background())
	if err != nil {
		l.t.Fatal(err)
	}
	return st
}

// A sign-in waiting for the user, or a client using the proxy, keeps an
// idle agent; when they end, it goes. The checks of "still there" look
// after three idle times without any socket request.
func TestPendingSignInAndProxyTrafficKeepTheAgent(t *testing.T) {
	l := newLifecycleEnv(t, "agent:\n  idle_exit: 3s\nproxy:\n  listen: 127.0.0.1:0\n")
	l.token()
	pid := l.onlyAgent()
	c, err := ipc.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	si, err := c.StartLogin(ctx, ipc.LoginRequest{Profile: l.profile, Flow: "device"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(9 * time.Second)
	if !processRuns(pid) || zombie(pid) {
		t.Fatal("the agent ended while a sign-in was pending")
	}
	if err := c.CancelLogin(ctx, si.ID); err != nil {
		t.Fatal(err)
	}

	ps, err := c.Proxy(ctx)
	if err != nil || !ps.Running {
		t.Fatalf("proxy: %v %+v", err, ps)
	}
	deadline := time.Now().Add(9 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + ps.Addr + "/no-such-route/")
		if err != nil {
			t.Fatalf("proxy request: %v", err)
		}
		resp.Body.Close()
		time.Sleep(500 * time.Millisecond)
	}
	if !processRuns(pid) || zombie(pid) {
		t.Fatal("the agent ended while the proxy was in use")
	}
	l.waitGone(pid, "idle exit after the proxy traffic stopped")
}

// `kc-agent stop` ends an autostarted agent (no service manager here) and
// refuses a lock that names a process that is not this user's agent: a
// neighbour's process, or one of the user's own that is not `kc-agent run`.
func TestStopWithoutServiceManager(t *testing.T) {
	l := newLifecycleEnv(t, "")
	l.token()
	pid := l.onlyAgent()
	code, _, stderr := l.runBin(l.env, l.bin, "stop")
	if code != 0 || !strings.Contains(stderr, fmt.Sprintf("stopped the agent (pid %d)", pid)) {
		t.Fatalf("stop: exit %d: %s", code, stderr)
	}
	l.waitGone(pid, "kc-agent stop")
	if code, _, stderr := l.runBin(l.env, l.bin, "stop"); code != 0 || !strings.Contains(stderr, "no agent runs") {
		t.Fatalf("stop with no agent: exit %d: %s", code, stderr)
	}
	l.token() // and it comes back
	l.runBin(l.env, l.bin, "stop")

	lockPath, _ := discovery.LockPath()
	held, err := ipc.TryLock(lockPath, "agent", "")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	nobody := asNobody(t, "import time; time.sleep(120)")
	mine := exec.Command("sleep", "120")
	if err := mine.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mine.Process.Kill(); mine.Wait() })
	for _, tc := range []struct {
		name string
		pid  int
		want string
	}{
		{"another user's process", nobody.Process.Pid, "not as you"},
		{"the user's own sleep", mine.Process.Pid, "is not `kc-agent run`"},
	} {
		os.WriteFile(lockPath, []byte(fmt.Sprintf("pid=%d\nrole=agent\nsocket=\n", tc.pid)), 0o600)
		code, _, stderr := l.runBin(l.env, l.bin, "stop")
		if code != exitError || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: stop exited %d: %s", tc.name, code, stderr)
		}
		if !processRuns(tc.pid) || zombie(tc.pid) {
			t.Errorf("%s: stop ended it", tc.name)
		}
	}
}

// A client that finds no agent while the last one is still shutting down
// (its lock says "stopping") starts the next one, which waits for the lock
// instead of refusing: the call succeeds.
func TestClientDuringShutdownStartsTheNextAgent(t *testing.T) {
	l := newLifecycleEnv(t, "")
	lockPath, _ := discovery.LockPath()
	stepping, err := ipc.TryLock(lockPath, "agent", os.Getenv("KC_AGENT_SOCK"))
	if err != nil {
		t.Fatal(err)
	}
	stepping.SetRole("stopping")
	released := make(chan struct{})
	go func() {
		time.Sleep(time.Second) // the old agent still closing its proxy and refreshes
		stepping.Release()
		close(released)
	}()
	l.token()
	<-released
	l.onlyAgent()
}

// With 10 s tokens (kcagent-short), the Python client's get_token() with no
// min_valid, called four times a second, causes a refresh grant about
// every 5 s (the 5 s floor, half the lifetime), never one per call, and
// every token it gets has that much life left. (Where the old fixed 60 s
// differed, tokens of 1-2 minutes, is counted in virtual time by
// agent/tokens TestDefaultMinValidNeverBringsRefreshesForward.)
func TestPythonDefaultMinValidWithShortTokens(t *testing.T) {
	l := newLifecycleEnvAs(t, keycloak.RealmShort, "gil", "")
	l.token()
	before := l.refreshes()
	py := exec.Command(debianPython, "-c", fmt.Sprintf(`import time
from kc_agent_client import get_token_info
calls, least = 0, 1e9
end = time.time() + 20
while time.time() < end:
    info = get_token_info(%q)
    least = min(least, (info.expires_at.timestamp() - time.time()))
    calls += 1
    time.sleep(0.25)
print(calls, round(least, 1))`, l.profile))
	py.Env = append(slices.Clone(l.env), "PYTHONPATH="+filepath.Join(repoRoot(t), "clients", "python", "src"))
	out, err := py.CombinedOutput()
	l.record(string(out))
	var calls int
	var least float64
	if _, serr := fmt.Sscan(string(out), &calls, &least); err != nil || serr != nil {
		t.Fatalf("python: %v: %s", err, out)
	}
	grants := l.refreshes() - before
	t.Logf("%d get_token() calls over 20 s of 10 s tokens: %d refresh grants; the shortest-lived token had %.1f s left", calls, grants, least)
	if grants > 20/5+3 || grants >= calls/4 {
		t.Errorf("%d refresh grants for %d calls over 20 s of 10 s tokens, want at most %d", grants, calls, 20/5+3)
	}
	// The 5 s floor, less the wire's whole seconds (expires_at) and the
	// call's own time.
	if least < 3.5 {
		t.Errorf("a token had %.1f s left, want at least the 5 s floor", least)
	}
}

func (l *lifecycleEnv) refreshes() int {
	l.t.Helper()
	for _, p := range l.status().Profiles {
		if p.Name == l.profile {
			return p.Refreshes
		}
	}
	l.t.Fatalf("status has no profile %s", l.profile)
	return 0
}

// notAtDefaultLocation waits until no test runs an agent at the default,
// uid-keyed location (defaultLocation holds the same lock exclusively):
// `kc-agent run` refuses to start while this user's agent answers there,
// whatever KC_AGENT_SOCK says.
func notAtDefaultLocation(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kc-agent-test-default-location.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() })
}
