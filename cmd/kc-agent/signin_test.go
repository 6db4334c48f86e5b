//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/daemon"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// configureProfile writes the env's profile (issuer of realm) into the
// user's config without logging in: the agent signs it in.
func (e *cliEnv) configureProfile(realm string) {
	e.t.Helper()
	path, _ := config.FilePath()
	os.MkdirAll(filepath.Dir(path), 0o700)
	data := fmt.Sprintf("profiles:\n  %s:\n    issuer: %s\n", e.profile, e.keycloak().Issuer(realm))
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// approveDevice signs in as user on the device flow's page, as from a
// phone, and checks that Keycloak took the approval.
func approveDevice(b *keycloak.FormBrowser, uri string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := b.Visit(ctx, uri)
	if err != nil {
		return err
	}
	if !strings.Contains(res.URL, "/device/status") {
		return errors.New("device approval ended at " + res.URL)
	}
	return nil
}

// waitSignIn long-polls a sign-in until it ends.
func waitSignIn(t *testing.T, c *ipc.Client, id string) *ipc.LoginStatus {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		st, err := c.LoginStatus(context.Background(), id, 10*time.Second)
		if err != nil {
			t.Fatalf("sign-in status: %v", err)
		}
		if st.State != ipc.LoginPending {
			return st
		}
	}
	t.Fatal("the sign-in never ended")
	return nil
}

// The agent runs a device sign-in for a configured profile: callers join
// it, status shows it, the QR comes as SVG, and once approved the login is
// stored and served at once.
func TestAgentSignInDevice(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.configureProfile(keycloak.RealmTest)
	agent := e.startAgent()
	c := agent.client
	ctx := context.Background()

	if _, code, _ := e.tokenJSON(); code != exitLoginRequired {
		t.Fatalf("token before sign-in: exit %d", code)
	}
	st, err := c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile, Flow: ipc.FlowDevice})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != ipc.LoginPending || st.ID == "" || st.UserCode == "" || !strings.Contains(st.VerificationURIComplete, "user_code=") ||
		st.VerificationURI == "" || st.ClientID == "" || st.Interval <= 0 || time.Until(st.ExpiresAt) < time.Minute || !strings.HasPrefix(st.QRSVG, "<svg") {
		t.Fatalf("start answer: %+v", st)
	}
	// A second caller joins, whatever flow it asks for.
	st2, err := c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile, Flow: ipc.FlowBrowser})
	if err != nil || st2.ID != st.ID || !st2.Joined || st2.Flow != ipc.FlowDevice {
		t.Fatalf("second start: %+v %v", st2, err)
	}
	code, out, _ := e.run("status")
	if !strings.Contains(out, "sign-in "+e.profile) || !strings.Contains(out, st.VerificationURIComplete) || !strings.Contains(out, "left") {
		t.Errorf("status (exit %d) does not show the sign-in:\n%s", code, out)
	}
	// The QR as an image of its own.
	resp := socketGet(t, c.Path, ipc.PathLogin+"/"+st.ID+"/qr.svg")
	if resp.status != 200 || resp.ctype != "image/svg+xml" || resp.body != st.QRSVG {
		t.Errorf("qr.svg: %d %s", resp.status, resp.ctype)
	}
	// A short poll of a pending sign-in answers pending.
	if p, err := c.LoginStatus(ctx, st.ID, 100*time.Millisecond); err != nil || p.State != ipc.LoginPending {
		t.Fatalf("poll: %+v %v", p, err)
	}

	if err := approveDevice(keycloak.NewFormBrowser("oscar", "oscar-pw"), st.VerificationURIComplete); err != nil {
		t.Fatal(err)
	}
	end := waitSignIn(t, c, st.ID)
	if end.State != ipc.LoginDone || end.Identity == nil || end.Identity.PreferredUsername != "oscar" || end.Identity.Subject == "" || end.Identity.Email == "" {
		t.Fatalf("end: %+v", end)
	}
	tok, code, stderr := e.tokenJSON()
	if code != 0 || tok.AccessToken == "" {
		t.Fatalf("token after the agent's sign-in: exit %d: %s", code, stderr)
	}
	rec, err := e.stored()
	if err != nil || rec.Username != "oscar" {
		t.Fatalf("stored: %v %v", rec.Username, err)
	}
	// The config was not touched: the profile came from it.
	if !strings.Contains(agent.log.String(), "sign-in started") || !strings.Contains(agent.log.String(), "sign-in done") {
		t.Errorf("log lacks the sign-in:\n%s", agent.log.String())
	}
	if strings.Contains(agent.log.String(), st.UserCode) {
		t.Error("the log shows the user code")
	}
}

// Denied at the consent page, and a device code that expires (the short
// realm's device codes live 3 s): the sign-in says which, and nothing is
// stored.
func TestAgentSignInDeniedAndExpired(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.configureProfile(keycloak.RealmTest)
	agent := e.startAgent()
	c := agent.client
	ctx := context.Background()

	st, err := c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile})
	if err != nil {
		t.Fatal(err)
	}
	b := keycloak.NewFormBrowser("oscar", "oscar-pw")
	b.Deny = true
	ctxv, cancel := context.WithTimeout(ctx, time.Minute)
	b.Visit(ctxv, st.VerificationURIComplete)
	cancel()
	if end := waitSignIn(t, c, st.ID); end.State != ipc.LoginDenied {
		t.Fatalf("denied: %+v", end)
	}

	// Expiry through the agent's own limit.
	short := daemon.DefaultSignInLimits
	short.Lifetime = 2 * time.Second
	t.Cleanup(daemon.SetSignInLimits(short))
	st, err = c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile})
	if err != nil {
		t.Fatal(err)
	}
	if end := waitSignIn(t, c, st.ID); end.State != ipc.LoginExpired {
		t.Fatalf("expired: %+v", end)
	}
	st, err = c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile, Flow: ipc.FlowBrowser})
	if err != nil {
		t.Fatal(err)
	}
	if end := waitSignIn(t, c, st.ID); end.State != ipc.LoginExpired {
		t.Fatalf("browser sign-in expired: %+v", end)
	}
	if _, err := e.stored(); err == nil {
		t.Fatal("something was stored")
	}

	// Cancelled by a caller.
	daemon.SetSignInLimits(daemon.DefaultSignInLimits)
	st, err = c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CancelLogin(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	if end := waitSignIn(t, c, st.ID); end.State != ipc.LoginCancelled {
		t.Fatalf("cancelled: %+v", end)
	}

	// An unknown profile names itself; an issuer can not be smuggled in.
	_, err = c.StartLogin(ctx, ipc.LoginRequest{Profile: "nosuch"})
	var ae *ipc.Error
	if !errors.As(err, &ae) || ae.Code != ipc.CodeUnknown || !strings.Contains(ae.Message, `"nosuch"`) {
		t.Fatalf("unknown profile: %v", err)
	}
	r := socketDo(t, c.Path, http.MethodPost, ipc.PathLogin, `{"profile":"`+e.profile+`","issuer":"https://evil.example.com/realms/x"}`)
	if r.status != 400 {
		t.Fatalf("a request with an issuer: %d %s", r.status, r.body)
	}

	// Starting is rate-limited (joining is not).
	few := daemon.DefaultSignInLimits
	few.PerWindow = 5 // four started above
	daemon.SetSignInLimits(few)
	st, err = c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile}); err != nil {
		t.Fatalf("joining counts against the limit: %v", err)
	}
	c.CancelLogin(ctx, st.ID)
	_, err = c.StartLogin(ctx, ipc.LoginRequest{Profile: e.profile})
	if !errors.As(err, &ae) || ae.Code != ipc.CodeRateLimited || ae.Status != 429 {
		t.Fatalf("fifth start: %v", err)
	}
}

// The browser flow through the agent, in headless Chromium: the agent's
// own loopback listener gets the redirect.
func TestAgentSignInBrowserChromium(t *testing.T) {
	testenv.SecretService(t)
	chromium := testenv.Chromium(t)
	e := newCLIEnv(t)
	e.configureProfile(keycloak.RealmTest)
	agent := e.startAgent()
	st, err := agent.client.StartLogin(context.Background(), ipc.LoginRequest{Profile: e.profile, Flow: ipc.FlowBrowser})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.AuthorizationURL, "code_challenge_method=S256") || !strings.Contains(st.AuthorizationURL, "redirect_uri=http%3A%2F%2F127.0.0.1%3A") || st.UserCode != "" {
		t.Fatalf("start: %+v", st)
	}
	if err := chromium.SignIn(st.AuthorizationURL, "dave", "dave-pw"); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	end := waitSignIn(t, agent.client, st.ID)
	if end.State != ipc.LoginDone || end.Identity.PreferredUsername != "dave" {
		t.Fatalf("end: %+v", end)
	}
	if _, code, stderr := e.tokenJSON(); code != 0 {
		t.Fatalf("token: %d %s", code, stderr)
	}
}

type socketAnswer struct {
	status int
	ctype  string
	body   string
}

func socketDo(t *testing.T, sock, method, path, body string) socketAnswer {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (netConn, error) {
		return dialUnix(ctx, sock)
	}}}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, "http://"+ipc.Host+path, rd)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return socketAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), string(data)}
}

func socketGet(t *testing.T, sock, path string) socketAnswer {
	return socketDo(t, sock, http.MethodGet, path, "")
}

type netConn = net.Conn

func dialUnix(ctx context.Context, sock string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

// systemConfig writes the administrator's file, root-owned and 0644 like a
// package would install it, and points KC_AGENT_SYSTEM_CONFIG at it.
func systemConfig(t *testing.T, data string) string {
	t.Helper()
	if os.Getuid() != 0 {
		testenv.OtherUser(t) // root: the system-wide config must belong to root
	}
	dir := filepath.Join(t.TempDir(), "etc-kc-agent")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KC_AGENT_SYSTEM_CONFIG", path)
	return path
}

// approver approves, as carol on another device, every pending sign-in
// that `kc-agent status --format json` shows, until stopped; deny makes
// it press "No" instead.
type approver struct {
	e       *cliEnv
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	seen    map[string]bool
	errs    []error
	ok      int
	deny    bool
	holdFor func() bool // approve only once this says so
}

func startApprover(e *cliEnv) *approver {
	a := &approver{e: e, stop: make(chan struct{}), done: make(chan struct{}), seen: map[string]bool{}}
	go a.loop()
	e.t.Cleanup(a.close)
	return a
}

func (a *approver) close() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}

func (a *approver) loop() {
	defer close(a.done)
	for {
		select {
		case <-a.stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		_, out, _ := a.e.run("status", "--format", "json")
		var st ipc.StatusResponse
		if json.Unmarshal([]byte(out), &st) != nil {
			continue
		}
		for _, si := range st.SignIns {
			a.mu.Lock()
			skip := a.seen[si.ID] || si.State != ipc.LoginPending || (a.holdFor != nil && !a.holdFor())
			deny := a.deny
			if !skip {
				a.seen[si.ID] = true
			}
			a.mu.Unlock()
			if skip {
				continue
			}
			b := keycloak.NewFormBrowser("carol", "carol-pw")
			b.Deny = deny
			var err error
			if deny {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				_, err = b.Visit(ctx, si.VerificationURIComplete)
				cancel()
			} else {
				err = approveDevice(b, si.VerificationURIComplete)
			}
			a.mu.Lock()
			if err != nil {
				a.errs = append(a.errs, err)
			} else {
				a.ok++
			}
			a.mu.Unlock()
		}
	}
}

func (a *approver) set(f func(a *approver)) {
	a.mu.Lock()
	f(a)
	a.mu.Unlock()
}

func (a *approver) result() (int, []error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ok, append([]error(nil), a.errs...)
}

// A first-time analyst on a machine with the administrator's file and no
// config of their own: a notebook (kernel without XDG_RUNTIME_DIR or any
// kc-agent variable) signs in with login(), reaches the API through the
// route, is revoked, gets LoginRequired, signs in again and works. The
// sign-in is approved from "another device" found through `kc-agent
// status`. Then from plain Python: two login() calls at once share one
// device grant, a denied sign-in raises LoginDenied, an expired one
// LoginExpired.
func TestNotebookSignIn(t *testing.T) {
	testenv.SecretService(t)
	requirePythonTools(t)
	root := repoRoot(t)
	e := newCLIEnv(t)
	e.profile = "default"
	home := defaultLocation(t, e) // no KC_AGENT_CONFIG: the user has no config file
	t.Setenv("KC_AGENT_STATE_DIR", filepath.Join(e.dir, "state"))
	sock, err := discovery.SocketPath()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Dir(sock)); os.IsNotExist(err) {
		t.Cleanup(func() { os.RemoveAll(filepath.Dir(sock)) })
	}
	kc := e.keycloak()
	ca := testenv.NewTestCA(t)
	rs := testenv.StartResourceServer(t, ca, kc.Issuer(keycloak.RealmTest), "warehouse-api")
	sys := systemConfig(t, fmt.Sprintf(`# rolled out by the administrator
profiles:
  default:
    issuer: %s
routes:
  - name: warehouse
    upstream: %s/v1
proxy:
  listen: %s
  ca_file: %s
`, kc.Issuer(keycloak.RealmTest), rs.URL, freeAddr(t), ca.PEMPath))
	userCfg, _ := config.FilePath()
	if _, err := os.Stat(userCfg); !os.IsNotExist(err) {
		t.Fatalf("the user has a config file: %v", err)
	}
	agent := e.startAgent()
	// More sign-ins than a real minute allows (the limit has its own test).
	many := daemon.DefaultSignInLimits
	many.PerWindow = 100
	t.Cleanup(daemon.SetSignInLimits(many))

	// status and doctor say where the profile and the route come from.
	_, out, _ := e.run("status")
	if !strings.Contains(out, "under the system-wide "+sys) || strings.Count(out, sys) != 3 || !strings.Contains(out, "route warehouse") {
		t.Errorf("status does not name the system file:\n%s", out)
	}
	_, out, _ = e.run("doctor")
	if !strings.Contains(out, sys) {
		t.Errorf("doctor does not name the system file:\n%s", out)
	}

	ap := startApprover(e)
	signal := filepath.Join(t.TempDir(), "signal")
	go func() {
		// The notebook's cue to revoke the session.
		for i := 0; i < 3000; i++ {
			if _, err := os.Stat(signal + ".revoke"); err == nil {
				if err := kc.Admin().RevokeOfflineSessions(context.Background(), keycloak.RealmTest, "carol"); err != nil {
					t.Errorf("revoke: %v", err)
				}
				os.WriteFile(signal+".revoked", nil, 0o600)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	py := pythonInterp{name: "debian", python: debianPython, env: []string{"PYTHONPATH=" + filepath.Join(root, "clients", "python", "src")}}
	nb := runNotebook(t, e, py, "signin.ipynb", []string{"NOTEBOOK_SIGNAL=" + signal}, false)
	text := nb.text()
	for _, want := range []string{
		"before login: LoginRequired; hint: run kc_agent_client.login() in a cell",
		"signed in as carol carol@",
		"200 carol /v1/tables",
		"access_token=<hidden>",
		"after revocation: LoginRequired; hint: run kc_agent_client.login()",
		"again 200 carol /v1/again",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("notebook output lacks %q:\n%s", want, text)
		}
	}
	if n, errs := ap.result(); n != 2 || len(errs) > 0 {
		t.Errorf("approvals: %d, errors %v", n, errs)
	}
	// The saved notebook shows how the sign-ins ended and no token;
	// runNotebook recorded it for the leak check.
	var html []string
	for _, c := range nb.Cells {
		for _, o := range c.Outputs {
			// nbformat keeps multi-line strings as lists of lines.
			switch h := o.Data["text/html"].(type) {
			case string:
				html = append(html, h)
			case []any:
				for _, l := range h {
					s, _ := l.(string)
					html = append(html, s)
				}
			}
		}
	}
	all := strings.Join(html, "\n")
	// Both sign-ins ended: their blocks say who signed in, and hold no
	// code or link a reader of the notebook could use.
	if !strings.Contains(all, "kc-agent-login") || !strings.Contains(all, "Signed in as carol") || strings.Contains(all, "user_code") || strings.Contains(all, kc.Issuer(keycloak.RealmTest)+"/device") {
		t.Errorf("the saved notebook does not show the ended sign-in, or still shows its code:\n%s", all)
	}
	if _, err := e.stored(); err != nil { // its token joins the leak check
		t.Fatalf("stored: %v", err)
	}
	// login never wrote a config: the system file is as rolled out, and
	// the user still has none.
	if _, err := os.Stat(userCfg); !os.IsNotExist(err) {
		t.Errorf("a user config appeared: %v", err)
	}

	pyEnv := append([]string{"HOME=" + home, "PATH=/usr/bin:/bin", "LANG=C.UTF-8"}, py.env...)
	pyLogin := func(args string) *exec.Cmd {
		cmd := exec.Command(debianPython, "-c", `
import sys, kc_agent_client as k
try:
    w = k.login(`+args+`)
    print("who", w.preferred_username)
except k.KcAgentError as e:
    print("raised", type(e).__name__, e)
`)
		cmd.Env = pyEnv
		return cmd
	}
	started := func() int { return strings.Count(agent.log.String(), "sign-in started") }
	// carol is signed in from here on: login() alone would return at once,
	// so the sign-ins below are login(force=True).

	t.Run("signed-in-starts-nothing", func(t *testing.T) {
		before := started()
		out, _ := pyLogin(`timeout=120`).CombinedOutput()
		e.record(string(out))
		if !strings.Contains(string(out), "Signed in as carol.") || !strings.Contains(string(out), "who carol") || started() != before {
			t.Fatalf("login() when signed in (%d sign-ins started):\n%s", started()-before, out)
		}
	})
	t.Run("two-notebooks-one-grant", func(t *testing.T) {
		before := started()
		joined := func() bool { return strings.Contains(agent.log.String(), "sign-in joined") }
		ap.set(func(a *approver) { a.holdFor = joined })
		defer ap.set(func(a *approver) { a.holdFor = nil })
		var nbs [2]*notebookRun
		var errs [2]error
		var wg sync.WaitGroup
		for i := range nbs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				nbs[i], errs[i] = execNotebook(t, e, py, "login.ipynb", nil, false)
			}()
		}
		wg.Wait()
		for i := range nbs {
			if errs[i] != nil {
				t.Fatalf("notebook %d: %v", i, errs[i])
			}
			if !strings.Contains(nbs[i].text(), "who carol") {
				t.Errorf("notebook %d:\n%s", i, nbs[i].text())
			}
		}
		if n := started() - before; n != 1 {
			t.Errorf("%d sign-ins started for two notebooks, want 1", n)
		}
	})
	t.Run("denied", func(t *testing.T) {
		ap.set(func(a *approver) { a.deny = true })
		defer ap.set(func(a *approver) { a.deny = false })
		out, _ := pyLogin(`timeout=120, force=True`).CombinedOutput()
		e.record(string(out))
		if !strings.Contains(string(out), "raised LoginDenied") {
			t.Fatalf("denied:\n%s", out)
		}
	})
	t.Run("expired", func(t *testing.T) {
		ap.set(func(a *approver) { a.holdFor = func() bool { return false } })
		defer ap.set(func(a *approver) { a.holdFor = nil })
		short := daemon.DefaultSignInLimits
		short.Lifetime = 2 * time.Second
		defer daemon.SetSignInLimits(short)()
		out, _ := pyLogin(`timeout=120, force=True`).CombinedOutput()
		e.record(string(out))
		if !strings.Contains(string(out), "raised LoginExpired") {
			t.Fatalf("expired:\n%s", out)
		}
	})
	t.Run("browser-flow-chromium", func(t *testing.T) {
		chromium := testenv.Chromium(t)
		ap.set(func(a *approver) { a.holdFor = func() bool { return false } })
		defer ap.set(func(a *approver) { a.holdFor = nil })
		// A desktop session: "auto" picks the browser flow. BROWSER=true
		// makes webbrowser.open a no-op; Chromium plays the user's browser.
		cmd := pyLogin(`timeout=120, force=True`)
		cmd.Env = append(cmd.Env, "DISPLAY=:99", "BROWSER=true")
		var out []byte
		done := make(chan struct{})
		go func() { out, _ = cmd.CombinedOutput(); close(done) }()
		authURL := ""
		for i := 0; i < 200 && authURL == ""; i++ {
			time.Sleep(100 * time.Millisecond)
			_, js, _ := e.run("status", "--format", "json")
			var st ipc.StatusResponse
			json.Unmarshal([]byte(js), &st)
			for _, si := range st.SignIns {
				if si.State == ipc.LoginPending && si.Flow == ipc.FlowBrowser {
					authURL = si.AuthorizationURL
				}
			}
		}
		if authURL == "" {
			<-done
			e.record(string(out))
			t.Fatalf("no browser sign-in showed in status; login() said:\n%s", out)
		}
		if err := chromium.SignIn(authURL, "carol", "carol-pw"); err != nil {
			t.Fatalf("chromium: %v", err)
		}
		<-done
		e.record(string(out))
		if !strings.Contains(string(out), "who carol") || !strings.Contains(string(out), "in a browser on this computer") {
			t.Fatalf("browser login():\n%s", out)
		}
	})
	t.Run("unknown-profile", func(t *testing.T) {
		out, _ := pyLogin(`"lab", timeout=10`).CombinedOutput()
		e.record(string(out))
		if !strings.Contains(string(out), `raised ConfigError no profile "lab"`) || !strings.Contains(string(out), sys) {
			t.Fatalf("unknown profile:\n%s", out)
		}
	})
}

// `kc-agent login` for a configured profile while an agent runs: the
// agent signs in (and stores), the command shows the same code and QR.
func TestLoginThroughAgent(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.configureProfile(keycloak.RealmTest)
	agent := e.startAgent()
	cfgPath, _ := config.FilePath()
	before, _ := os.ReadFile(cfgPath)

	wait := browse(keycloak.NewFormBrowser("oscar", "oscar-pw"))
	code, _, stderr := e.run("login", "--profile", e.profile, "--device", "--timeout", "60s")
	if err := wait(); err != nil {
		t.Fatalf("device approval: %v", err)
	}
	if code != 0 {
		t.Fatalf("login exited %d: %s", code, stderr)
	}
	for _, want := range []string{"enter the code", "scan this code", "▀", "logged in as oscar", "the running agent keeps the offline token"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if n := strings.Count(agent.log.String(), "sign-in done"); n != 1 {
		t.Errorf("the agent ran %d sign-ins", n)
	}
	if _, code, stderr := e.tokenJSON(); code != 0 {
		t.Fatalf("token: %d %s", code, stderr)
	}

	// The browser flow: the agent's loopback listener gets the redirect.
	wait = browse(keycloak.NewFormBrowser("oscar", "oscar-pw"))
	code, _, stderr = e.run("login", "--profile", e.profile, "--timeout", "60s")
	if err := wait(); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if code != 0 || !strings.Contains(stderr, "opened your browser") || strings.Count(agent.log.String(), "sign-in done") != 2 {
		t.Fatalf("browser login exited %d: %s", code, stderr)
	}
	after, _ := os.ReadFile(cfgPath)
	if string(before) != string(after) {
		t.Errorf("the config changed:\n%s", after)
	}
	rec, err := e.stored()
	if err != nil || rec.Username != "oscar" {
		t.Fatalf("stored: %v", err)
	}
}

// A system-wide file that another user owns, or that others can write, is
// ignored by the commands and the agent, which say so with the file and
// the fix named.
func TestSystemConfigRefused(t *testing.T) {
	e := newCLIEnv(t)
	sys := systemConfig(t, "profiles:\n  default:\n    issuer: https://sso.example.com/realms/a\n")
	for _, tc := range []struct {
		name  string
		setup func() error
		want  string
	}{
		{"writable by others", func() error { return os.Chmod(sys, 0o666) }, "chmod go-w " + sys},
		{"owned by another user", func() error { os.Chmod(sys, 0o644); return os.Chown(sys, 65534, 65534) }, "belongs to uid 65534, not to root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.setup(); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := e.run("logout", "--profile", "default")
			if code == 0 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "system-wide config is ignored") {
				t.Errorf("logout: exit %d: %s", code, stderr)
			}
			_, out, _ := e.run("doctor")
			if !strings.Contains(out, "FAIL") || !strings.Contains(out, tc.want) {
				t.Errorf("doctor:\n%s", out)
			}
			agent := e.startAgent()
			st, err := agent.client.Status(context.Background())
			if err != nil || !strings.Contains(st.SystemConfigError, tc.want) || st.ConfigError != "" || len(st.Profiles) != 0 {
				t.Errorf("agent status: %v %+v", err, st)
			}
			agent.stop()
		})
	}
}
