//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/internal/testenv/wine"
)

// winEnv is kc-agent.exe in a private Wine prefix, with its config and
// state in a Linux directory (Z:\... for the program).
type winEnv struct {
	t       *testing.T
	prefix  string
	exe     string // kc-agent.exe
	httpget string // a Windows HTTP client (Wine has no curl.exe)
	dir     string
	profile string
	env     []string

	mu      sync.Mutex
	outputs []string // everything printed that must hold no token
	secrets []string
}

// buildWindows builds the Windows binary of the package at path (relative
// to this package) into dir.
func buildWindows(t *testing.T, dir, name, path string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, path)
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=windows go build %s: %v\n%s", path, err, b)
	}
	return out
}

func newWinEnv(t *testing.T) *winEnv {
	t.Helper()
	prefix := wine.Prefix(t) // skips without Wine; fails under KC_AGENT_REQUIRE_WINE=1
	bin := t.TempDir()
	w := &winEnv{
		t: t, prefix: prefix, dir: t.TempDir(), profile: "win-e2e",
		exe:     buildWindows(t, bin, "kc-agent.exe", "."),
		httpget: buildWindows(t, bin, "httpget.exe", "../../internal/testenv/cmd/httpget"),
	}
	for _, kv := range wine.Env(prefix) {
		k, _, _ := strings.Cut(kv, "=")
		// The program's environment is this test's, not the developer's:
		// no overrides, no proxies between it and Keycloak.
		if strings.HasPrefix(k, "KC_AGENT_") || strings.EqualFold(k, "HTTPS_PROXY") || strings.EqualFold(k, "HTTP_PROXY") ||
			strings.EqualFold(k, "NO_PROXY") || k == "BROWSER" {
			continue
		}
		w.env = append(w.env, kv)
	}
	w.env = append(w.env,
		"KC_AGENT_CONFIG="+wine.WinPath(filepath.Join(w.dir, "config", "config.yaml")),
		"KC_AGENT_STATE_DIR="+wine.WinPath(filepath.Join(w.dir, "state")),
		"KC_AGENT_PROFILE="+w.profile,
		"KC_AGENT_NO_AUTOSTART=1",
		"BROWSER=kc-agent-test-no-browser", // the device code is read from stderr
	)
	t.Cleanup(w.checkNoTokens)
	return w
}

// command is a Windows program run with the env's environment.
func (w *winEnv) command(ctx context.Context, exe string, args ...string) *exec.Cmd {
	cmd := wine.Command(ctx, w.prefix, exe, args...)
	cmd.Env = w.env
	return cmd
}

// run runs kc-agent.exe to its end and records what it printed.
func (w *winEnv) run(args ...string) (code int, stdout, stderr string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, errb, err := wine.Output(w.command(ctx, w.exe, args...))
	code = exitCode(w.t, err)
	w.mu.Lock()
	if len(args) > 0 && args[0] == "token" {
		w.outputs = append(w.outputs, string(errb))
	} else {
		w.outputs = append(w.outputs, string(out), string(errb))
	}
	w.mu.Unlock()
	return code, string(out), string(errb)
}

func exitCode(t *testing.T, err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("running under Wine: %v", err)
	return -1
}

func (w *winEnv) checkNoTokens() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, out := range w.outputs {
		if jwtLike.MatchString(out) {
			w.t.Errorf("output #%d of kc-agent.exe contains something shaped like a JWT", i)
		}
		for _, s := range w.secrets {
			if strings.Contains(out, s) {
				w.t.Errorf("output #%d of kc-agent.exe contains a token", i)
			}
		}
	}
}

// background starts kc-agent.exe with args, its output in a log file; the
// returned func stops it (it is a Linux process too: Wine runs each
// Windows process as one) and returns the log.
func (w *winEnv) background(args ...string) (stop func() string) {
	w.t.Helper()
	log := filepath.Join(w.dir, fmt.Sprintf("%s-%d.log", args[0], time.Now().UnixNano()))
	f, err := os.Create(log)
	if err != nil {
		w.t.Fatal(err)
	}
	cmd := w.command(context.Background(), w.exe, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	f.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var once sync.Once
	var out string
	stop = func() string {
		once.Do(func() {
			cmd.Process.Kill()
			<-done
			b, _ := os.ReadFile(log)
			out = string(b)
			w.mu.Lock()
			w.outputs = append(w.outputs, out)
			w.mu.Unlock()
		})
		return out
	}
	w.t.Cleanup(func() { stop() })
	return stop
}

// winWaitFor runs f every half second until it says done, for at most d.
func winWaitFor(d time.Duration, f func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if f() {
			return true
		}
	}
	return f()
}

var deviceURLRe = regexp.MustCompile(`https?://\S+user_code=\S+`)

// deviceLogin logs the env's profile in with the device flow, approved by
// the test browser on the Linux side, as a user on a phone would.
func (w *winEnv) deviceLogin(kc *keycloak.Server, realm, user, password string) {
	w.t.Helper()
	// Keycloak listens on the Linux side, on plain http: Windows under Wine
	// can't name the owner of that loopback socket (Wine knows only the
	// sockets of its own processes), so the profile opts in, as the README
	// says for systems where socket owners are invisible.
	cfgDir := filepath.Join(w.dir, "config")
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		w.t.Fatal(err)
	}
	cfg := fmt.Sprintf("profiles:\n  %s:\n    issuer: %s\n    unsafe_cleartext_issuer: true\n", w.profile, kc.Issuer(realm))
	if err := os.WriteFile(filepath.Join(cfgDir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		w.t.Fatal(err)
	}
	log := filepath.Join(w.dir, "login.log")
	f, err := os.Create(log)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := w.command(ctx, w.exe, "login", kc.Issuer(realm), "--profile", w.profile, "--device", "--timeout", "90s")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	f.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var url string
	winWaitFor(60*time.Second, func() bool {
		b, _ := os.ReadFile(log)
		url = deviceURLRe.FindString(string(b))
		return url != ""
	})
	if url == "" {
		cancel()
		<-done
		b, _ := os.ReadFile(log)
		w.t.Fatalf("kc-agent.exe login --device showed no verification URL:\n%s", b)
	}
	res, err := keycloak.NewFormBrowser(user, password).Visit(ctx, url)
	if err != nil || !strings.Contains(res.URL, "/device/status") {
		w.t.Fatalf("approving the device code: %v (ended at %v)", err, res)
	}
	err = <-done
	b, _ := os.ReadFile(log)
	w.mu.Lock()
	w.outputs = append(w.outputs, string(b))
	w.mu.Unlock()
	if err != nil {
		w.t.Fatalf("kc-agent.exe login --device: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), "logged in as "+user) {
		w.t.Fatalf("login said:\n%s", b)
	}
}

// regQueryRun is the kc-agent value of the user's Run key, through wine
// reg, as an administrator would look; ok is false when it is absent.
func (w *winEnv) regQueryRun() (value string, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wine", "reg", "query", `HKCU\Software\Microsoft\Windows\CurrentVersion\Run`, "/v", "kc-agent")
	cmd.Env = w.env
	out, _, err := wine.Output(cmd)
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "kc-agent" && f[1] == "REG_SZ" {
			return strings.TrimSpace(strings.SplitN(line, "REG_SZ", 2)[1]), true
		}
	}
	return "", false
}

// TestWindowsEndToEnd runs kc-agent.exe under Wine as a Windows user
// would: a device login into the Credential Manager, the agent on its
// named pipe, token and status from other processes, a route that injects
// the token for a Windows process of the user and for no one else, and the
// service cycle through the Run key.
func TestWindowsEndToEnd(t *testing.T) {
	w := newWinEnv(t)
	kc := testenv.Keycloak(t)
	w.deviceLogin(kc, keycloak.RealmTest, "alice", "alice-pw")

	// A route to an API that checks Keycloak's tokens, on the Linux side
	// (Wine shares the loopback), trusted through the config's CA file.
	ca := testenv.NewTestCA(t)
	rs := testenv.StartResourceServer(t, ca, kc.Issuer(keycloak.RealmTest), "warehouse-api")
	addr := freeAddr(t)
	cfgPath := filepath.Join(w.dir, "config", "config.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatalf("login wrote no config: %v", err)
	}
	cfg = append(cfg, fmt.Sprintf(`routes:
  - name: warehouse
    upstream: %s/v1
    profile: %s
proxy:
  listen: %s
  ca_file: %s
`, rs.URL, w.profile, addr, wine.WinPath(ca.PEMPath))...)
	// In place: the file keeps the owner and ACL the Windows login gave it.
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}

	stopAgent := w.background("run")
	var code int
	var stdout, stderr string
	if !winWaitFor(60*time.Second, func() bool { code, stdout, stderr = w.run("status"); return code == 0 }) {
		t.Fatalf("kc-agent.exe run never answered on its pipe: status exited %d: %s\nagent log:\n%s", code, stderr, stopAgent())
	}
	if !strings.Contains(stdout, w.profile) {
		t.Errorf("status does not show the profile:\n%s", stdout)
	}

	code, stdout, stderr = w.run("token")
	tok := strings.TrimSpace(stdout)
	if code != 0 || !jwtLike.MatchString(tok) {
		t.Fatalf("token exited %d, printed %d characters: %s", code, len(tok), stderr)
	}
	w.mu.Lock()
	w.secrets = append(w.secrets, tok)
	w.mu.Unlock()

	// A Windows process of the user reads through the route.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _, err := wine.Output(w.command(ctx, w.httpget, "http://"+addr+"/warehouse/tables"))
	var who testenv.WhoAmI
	body := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "200"))
	if err != nil || json.Unmarshal([]byte(body), &who) != nil || who.User != "alice" || who.Path != "/v1/tables" {
		t.Fatalf("a Windows process of the user through the route: %v\n%s", err, out)
	}

	// A process of another uid gets no token through the same route.
	seen := len(rs.Seen())
	{
		setpriv := testenv.OtherUser(t)
		cmd := exec.Command(setpriv, testenv.AsNobody("/usr/bin/python3", "-c", `import sys, urllib.request
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=10)
    print(r.status)
except Exception as e:
    print("refused:", type(e).__name__)`, "http://"+addr+"/warehouse/tables")...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "NO_PROXY=*"}
		b, _ := cmd.CombinedOutput()
		t.Logf("another uid through the route: %s", strings.TrimSpace(string(b)))
		if strings.HasPrefix(strings.TrimSpace(string(b)), "200") {
			t.Errorf("another uid read through the route: %s", b)
		}
		for _, r := range rs.Seen()[seen:] {
			if r.Authorization {
				t.Errorf("a request of another uid reached the API with a token")
			}
		}
	}
	log := stopAgent()
	if strings.Contains(log, tok) || jwtLike.MatchString(log) {
		t.Errorf("the agent's log holds a token")
	}

	// The service: the Run key, a started agent, stop, uninstall.
	code, _, stderr = w.run("service", "install")
	if code != 0 {
		t.Fatalf("service install exited %d: %s", code, stderr)
	}
	if v, ok := w.regQueryRun(); !ok || !strings.Contains(strings.ToLower(v), "kc-agent.exe") || !strings.Contains(v, " run") {
		t.Errorf("Run value after install: %q (present: %v)", v, ok)
	}
	if !winWaitFor(60*time.Second, func() bool { code, _, _ = w.run("status"); return code == 0 }) {
		t.Errorf("the agent service install started never answered")
	}
	code, stdout, stderr = w.run("service", "status")
	if code != 0 || !regexp.MustCompile(`(?m)^running:\s+yes`).MatchString(stdout) {
		t.Errorf("service status after install exited %d:\n%s%s", code, stdout, stderr)
	}
	if code, _, _ = w.run("token"); code != 0 {
		t.Errorf("token from the service's agent exited %d", code)
	}
	code, _, stderr = w.run("service", "stop")
	if code != 0 {
		t.Errorf("service stop exited %d: %s", code, stderr)
	}
	if !winWaitFor(20*time.Second, func() bool { code, _, _ = w.run("status"); return code == 3 }) {
		t.Errorf("the agent still answers after service stop (status exited %d)", code)
	}
	code, stdout, _ = w.run("service", "status")
	if !regexp.MustCompile(`(?m)^running:\s+no`).MatchString(stdout) {
		t.Errorf("service status after stop exited %d:\n%s", code, stdout)
	}
	if code, _, stderr = w.run("service", "start"); code != 0 {
		t.Errorf("service start exited %d: %s", code, stderr)
	}
	code, _, stderr = w.run("service", "uninstall")
	if code != 0 {
		t.Errorf("service uninstall exited %d: %s", code, stderr)
	}
	if v, ok := w.regQueryRun(); ok {
		t.Errorf("the Run value is still there after uninstall: %q", v)
	}
	if !winWaitFor(20*time.Second, func() bool { code, _, _ = w.run("status"); return code == 3 }) {
		t.Errorf("the agent still answers after service uninstall (status exited %d)", code)
	}
	// The service's log, %LOCALAPPDATA%\kc-agent\agent.log, read from Linux.
	logs, _ := filepath.Glob(filepath.Join(w.prefix, "drive_c", "users", "*", "AppData", "Local", "kc-agent", "agent.log"))
	if len(logs) == 0 {
		t.Errorf("the service wrote no agent.log")
	}
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		t.Logf("%s: %d bytes", l, len(b))
		if strings.Contains(string(b), tok) || jwtLike.Match(b) {
			t.Errorf("the service's log holds a token")
		}
	}
}
