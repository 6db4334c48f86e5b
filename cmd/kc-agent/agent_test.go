//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/daemon"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// netSwitch makes the agent's connections to Keycloak fail on demand, the
// way they fail when Keycloak is stopped (connection refused).
type netSwitch struct{ down atomic.Bool }

func (n *netSwitch) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if n.down.Load() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused (test: Keycloak down)")}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

type agentProc struct {
	log    *syncBuffer
	stop   func()
	net    *netSwitch
	mgr    *tokens.Manager
	client *ipc.Client
}

// startAgent runs the daemon in-process on the env's socket, with the real
// keychain and Keycloak; its log is kept for the token leak check.
func (e *cliEnv) startAgent() *agentProc {
	e.t.Helper()
	return e.startAgentWith(nil)
}

// startAgentWith is startAgent with the token manager's seams changed by
// setup before the agent reads its config.
func (e *cliEnv) startAgentWith(setup func(*tokens.Manager)) *agentProc {
	e.t.Helper()
	logBuf := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ns := &netSwitch{}
	mgr := tokens.NewManager(log)
	mgr.NewClient = func(ctx context.Context, prof config.Profile) (tokens.Refresher, error) {
		c, err := oidc.ForProfile(ctx, prof)
		if err != nil {
			return nil, err
		}
		cc := *c
		cc.HTTP = oidc.NewHTTPClient(oidc.Options{UnsafeCleartext: prof.UnsafeCleartextIssuer}, ns.dial)
		return &cc, nil
	}
	if setup != nil {
		setup(mgr)
	}
	cfgPath, _ := config.FilePath()
	sock, _ := discovery.SocketPath()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Version: "test", ConfigPath: cfgPath, SocketPath: sock, Log: log, Ready: ready, Manager: mgr, StateDir: os.Getenv("KC_AGENT_STATE_DIR")})
	}()
	select {
	case <-ready:
	case err := <-done:
		e.t.Fatalf("agent did not start: %v", err)
	}
	var once sync.Once
	p := &agentProc{log: logBuf, net: ns, mgr: mgr, client: ipc.NewClientAt(sock)}
	p.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("agent exited with %v", err)
			}
			e.mu.Lock()
			e.outputs = append(e.outputs, logBuf.String())
			e.mu.Unlock()
		})
	}
	e.t.Cleanup(p.stop)
	return p
}

func (e *cliEnv) tokenJSON(args ...string) (ipc.TokenResponse, int, string) {
	e.t.Helper()
	code, stdout, stderr := e.run(append([]string{"token", "--profile", e.profile, "--format", "json"}, args...)...)
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresAt   string `json:"expires_at"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if code == 0 {
		if err := json.Unmarshal([]byte(stdout), &tr); err != nil {
			e.t.Fatalf("token --format json printed invalid JSON (%v)", err)
		}
		e.addSecret(tr.AccessToken)
	}
	at, _ := time.Parse(time.RFC3339, tr.ExpiresAt)
	return ipc.TokenResponse{AccessToken: tr.AccessToken, TokenType: tr.TokenType, ExpiresAt: at, ExpiresIn: tr.ExpiresIn}, code, stderr
}

// loggedInAgent is how most agent tests begin: a fresh profile logged in as
// user (password user-pw) to realm, an agent, and a first token from it.
func loggedInAgent(t *testing.T, realm, user string) (*cliEnv, *agentProc, ipc.TokenResponse) {
	t.Helper()
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.login(realm, user, user+"-pw")
	agent := e.startAgent()
	first, code, stderr := e.tokenJSON()
	if code != 0 {
		t.Fatalf("first token: exit %d: %s", code, stderr)
	}
	return e, agent, first
}

func refreshCount(t *testing.T, kc *keycloak.Server, realm, user string) int {
	t.Helper()
	n, err := kc.Admin().CountEvents(context.Background(), realm, "REFRESH_TOKEN", user)
	if err != nil {
		t.Fatalf("counting refresh events: %v", err)
	}
	return n
}

// Tokens of 10 s, asked for over several lifetimes: nobody ever gets one
// that expires within its min_valid, and Keycloak sees refreshes on the
// agent's schedule (about one per 75-80% of a lifetime while hot).
func TestAgentKeepsTokensFresh(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	e.login(keycloak.RealmShort, "frank", "frank-pw")
	agent := e.startAgent()
	before := refreshCount(t, kc, keycloak.RealmShort, "frank")

	const minValid = 3 * time.Second
	start := time.Now()
	seen := map[string]bool{}
	for time.Since(start) < 32*time.Second {
		tok, code, stderr := e.tokenJSON("--min-valid", minValid.String())
		if code != 0 {
			t.Fatalf("token exited %d: %s", code, stderr)
		}
		if left := time.Until(tok.ExpiresAt); left < minValid-time.Second {
			t.Fatalf("got a token with %s left, asked for at least %s", left, minValid)
		}
		if tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 {
			t.Fatalf("token response: type %q expires_in %d", tok.TokenType, tok.ExpiresIn)
		}
		seen[tok.AccessToken] = true
		time.Sleep(400 * time.Millisecond)
	}
	elapsed := time.Since(start)
	refreshes := refreshCount(t, kc, keycloak.RealmShort, "frank") - before
	// Schedule: one at first use, then one per 7.5-8 s while hot. Allow
	// for scheduling noise on a loaded machine, not for a refresh per call.
	lo := int(elapsed/(10*time.Second)) + 1
	hi := int(elapsed/(7*time.Second)) + 3
	if refreshes < lo || refreshes > hi {
		t.Fatalf("Keycloak saw %d refresh grants in %s, want %d..%d (calls: ~%d)", refreshes, elapsed.Round(time.Second), lo, hi, int(elapsed/(400*time.Millisecond)))
	}
	if len(seen) < 3 {
		t.Fatalf("only %d distinct tokens over ~3 lifetimes", len(seen))
	}
	st := agent.mgr.Status()
	if st[0].NextRefresh.IsZero() || st[0].State != tokens.StateActive {
		t.Fatalf("status: %+v", st[0])
	}
}

// With Revoke Refresh Token on, one concurrent burst across an expiry is
// exactly one refresh grant, and the rotated token survives a restart.
func TestAgentRotationSingleRefreshAndRestart(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	e.login(keycloak.RealmRotation, "heidi", "heidi-pw")
	agent := e.startAgent()
	ctx := context.Background()
	first, err := agent.client.Token(ctx, ipc.TokenRequest{Profile: e.profile})
	if err != nil {
		t.Fatal(err)
	}
	e.addSecret(first.AccessToken)
	time.Sleep(1500 * time.Millisecond) // the cached token now has < 9 s left
	before := refreshCount(t, kc, keycloak.RealmRotation, "heidi")

	var wg sync.WaitGroup
	var failures atomic.Int32
	var distinct sync.Map
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := agent.client.Token(ctx, ipc.TokenRequest{Profile: e.profile, MinValid: 9})
			if err != nil || time.Until(tok.ExpiresAt) < 8*time.Second {
				failures.Add(1)
				return
			}
			distinct.Store(tok.AccessToken, true)
		}()
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of 200 concurrent requests failed", n)
	}
	if n := refreshCount(t, kc, keycloak.RealmRotation, "heidi") - before; n != 1 {
		t.Fatalf("200 concurrent requests across an expiry caused %d refresh grants, want 1", n)
	}
	distinct.Range(func(k, _ any) bool { e.addSecret(k.(string)); return true })

	// Restart: the new agent starts from the persisted (rotated) token.
	agent.stop()
	rec, err := e.stored()
	if err != nil {
		t.Fatal(err)
	}
	agent2 := e.startAgent()
	tok, code, stderr := e.tokenJSON()
	if code != 0 {
		t.Fatalf("after restart, token exited %d: %s", code, stderr)
	}
	if _, ok := distinct.Load(tok.AccessToken); ok {
		t.Fatal("restarted agent served a token it could not have fetched")
	}
	rec2, _ := e.stored()
	if rec2.RefreshToken == rec.RefreshToken {
		t.Fatal("the refresh after restart did not rotate and persist the offline token")
	}
	if st := agent2.mgr.Status()[0]; st.State != tokens.StateActive || st.PersistPending {
		t.Fatalf("status after restart: %+v", st)
	}
}

func TestAgentRevokedSessionNeedsLogin(t *testing.T) {
	e, agent, _ := loggedInAgent(t, keycloak.RealmShort, "grace")
	kc := e.keycloak()
	if err := kc.Admin().RevokeOfflineSessions(context.Background(), keycloak.RealmShort, "grace"); err != nil {
		t.Fatal(err)
	}
	// A forced refresh goes to Keycloak, which refuses it.
	code, stdout, stderr := e.run("token", "--profile", e.profile, "--force-refresh")
	if code != exitLoginRequired || stdout != "" {
		t.Fatalf("token after revocation: exit %d, %d bytes on stdout", code, len(stdout))
	}
	if !strings.Contains(stderr, "kc-agent login --profile "+e.profile) || !strings.Contains(stderr, "needs a new login") {
		t.Fatalf("stderr does not say what to do:\n%s", stderr)
	}
	code, stdout, _ = e.run("status", "--profile", e.profile)
	if code != exitLoginRequired || !strings.Contains(stdout, "login_required") || !strings.Contains(stdout, "invalid_grant") {
		t.Fatalf("status: exit %d\n%s", code, stdout)
	}
	// Even a plain request now fails fast instead of serving a token.
	if code, _, _ := e.run("token", "--profile", e.profile); code != exitLoginRequired {
		t.Fatalf("token after login_required: exit %d", code)
	}
	_ = agent
}

// Keycloak unreachable: the cached token is served until it expires, status
// says degraded, retries back off, and the agent recovers on its own.
func TestAgentDegradedWhileKeycloakDown(t *testing.T) {
	e, agent, first := loggedInAgent(t, keycloak.RealmShort, "ivan")
	agent.net.down.Store(true)
	// Cached token keeps being served while it is valid.
	again, code, _ := e.tokenJSON()
	if code != 0 || again.AccessToken != first.AccessToken {
		t.Fatalf("cached token not served while Keycloak is down (exit %d)", code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for agent.mgr.Status()[0].State != tokens.StateDegraded && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	code, stdout, _ := e.run("status", "--profile", e.profile, "--format", "json")
	if code != 0 || !strings.Contains(stdout, `"state": "degraded"`) || !strings.Contains(stdout, "connection refused") {
		t.Fatalf("status while down: exit %d\n%s", code, stdout)
	}
	// Once expired, no token is handed out; the error says the agent retries.
	time.Sleep(time.Until(first.ExpiresAt) - 4*time.Second)
	code, stdout, stderr := e.run("token", "--profile", e.profile)
	if code != exitError || stdout != "" || !strings.Contains(stderr, "retries with backoff") {
		t.Fatalf("served an almost expired token while down, or said nothing useful: exit %d\n%s", code, stderr)
	}
	attempts := strings.Count(agent.log.String(), "refresh failed; will retry")
	if attempts < 1 || attempts > 8 {
		t.Fatalf("%d refresh attempts in ~10 s of downtime: want backoff, not a loop", attempts)
	}
	agent.net.down.Store(false)
	deadline = time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if code, _, _ := e.run("token", "--profile", e.profile); code == 0 {
			if st := agent.mgr.Status()[0]; st.State != tokens.StateActive {
				t.Fatalf("token served but state %s", st.State)
			}
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatal("agent did not recover after Keycloak came back")
}

func TestAgentPicksUpLoginAndLogout(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	// Agent first, with no profile at all.
	e.startAgent()
	if code, _, stderr := e.run("token", "--profile", e.profile); code != exitLoginRequired || !strings.Contains(stderr, "kc-agent login --profile") {
		t.Fatalf("token before login: exit %d %s", code, stderr)
	}
	e.login(keycloak.RealmTest, "oscar", "oscar-pw")
	if _, code, stderr := e.tokenJSON(); code != 0 {
		t.Fatalf("agent did not pick up the login: %s", stderr)
	}
	if code, _, _ := e.run("logout", "--profile", e.profile); code != 0 {
		t.Fatal("logout failed")
	}
	if code, _, stderr := e.run("token", "--profile", e.profile); code != exitLoginRequired {
		t.Fatalf("agent still serves after logout: exit %d %s", code, stderr)
	}
	_ = kc
}

func TestAgentConfigHotReload(t *testing.T) {
	e, agent, _ := loggedInAgent(t, keycloak.RealmTest, "peggy")
	path := os.Getenv("KC_AGENT_CONFIG")
	good, _ := os.ReadFile(path)
	// An editor-style replace with a broken file: rejected, last good stays.
	tmp := path + ".swp"
	os.WriteFile(tmp, []byte("profiles:\n  x: [\n"), 0o600)
	os.Rename(tmp, path)
	waitFor(t, func() bool {
		st, err := agent.client.Status(context.Background())
		return err == nil && st.ConfigError != ""
	}, "status to show the config error")
	if _, code, stderr := e.tokenJSON(); code != 0 {
		t.Fatalf("a broken config file took the profile away: %s", stderr)
	}
	// Fixed, plus a second profile: both live without a restart.
	fixed := string(good) + "  extra:\n    issuer: " + e.keycloak().Issuer(keycloak.RealmTest) + "\n"
	os.WriteFile(tmp, []byte(fixed), 0o600)
	os.Rename(tmp, path)
	waitFor(t, func() bool {
		st, err := agent.client.Status(context.Background())
		return err == nil && st.ConfigError == "" && len(st.Profiles) == 2
	}, "the fixed config to load")
	// Remove the extra profile again.
	os.WriteFile(tmp, good, 0o600)
	os.Rename(tmp, path)
	waitFor(t, func() bool {
		st, err := agent.client.Status(context.Background())
		return err == nil && len(st.Profiles) == 1
	}, "the removed profile to go")
	if !strings.Contains(agent.log.String(), "config change rejected") {
		t.Fatal("the rejected config was not logged")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Socket hygiene: a second agent refuses to start, a stale socket is
// replaced, the socket is 0600 in a 0700 directory.
func TestAgentSocketHygiene(t *testing.T) {
	e := newCLIEnv(t)
	agent := e.startAgent()
	sock := agent.client.Path
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v)", fi.Mode().Perm(), err)
	}
	di, _ := os.Stat(filepath.Dir(sock))
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("socket dir mode %v", di.Mode().Perm())
	}
	checkNoCoreDumps(t)
	code, _, stderr := e.run("run")
	if code == 0 || !strings.Contains(stderr, "already runs for this user") || !strings.Contains(stderr, sock) {
		t.Fatalf("second agent: exit %d %s", code, stderr)
	}
	agent.stop()
	// Leave a stale socket file behind, as a crash would.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	a2 := e.startAgent()
	if err := a2.client.Health(context.Background()); err != nil {
		t.Fatalf("agent over a stale socket: %v", err)
	}
	if !strings.Contains(a2.log.String(), "removed stale socket") {
		t.Fatal("stale socket removal not logged")
	}
}

// Malformed and oversized requests get 4xx; the agent keeps serving.
func TestAgentRejectsBadRequests(t *testing.T) {
	e := newCLIEnv(t)
	agent := e.startAgent()
	sock := agent.client.Path
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	post := func(body string, hdr map[string]string) int {
		req, _ := http.NewRequest("POST", "http://"+ipc.Host+ipc.PathToken, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		body string
		hdr  map[string]string
		want int
	}{
		{`{`, nil, 400},
		{`{"profile": 3}`, nil, 400},
		{`{"profile":"x","evil":1}`, nil, 400},
		{`{"profile":"x"} {"profile":"y"}`, nil, 400},
		{`{"profile":"x","min_valid":-1}`, nil, 400},
		{`{"profile":"x","scopes":["a b"]}`, nil, 400},
		{`{"profile":"` + strings.Repeat("x", 100) + `"}`, nil, 400},
		{`{"profile":"` + strings.Repeat("x", 100000) + `"}`, nil, 413},
		{`{"profile":"nope"}`, nil, 401},
		{`{"profile":"nope"}`, map[string]string{"Origin": "https://evil.example.com"}, 403},
		{`{"profile":"nope"}`, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
	}
	for _, tc := range cases {
		if got := post(tc.body, tc.hdr); got != tc.want {
			t.Errorf("body %.40q: HTTP %d, want %d", tc.body, got, tc.want)
		}
	}
	req, _ := http.NewRequest("GET", "http://evil.example.com"+ipc.PathStatus, nil)
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("foreign Host accepted")
	}
	if err := agent.client.Health(context.Background()); err != nil {
		t.Fatalf("agent stopped serving after bad requests: %v", err)
	}
}

// A process of another user can not use the socket, even if the file
// modes let it connect: the peer uid check refuses it.
func TestAgentRefusesOtherUID(t *testing.T) {
	setpriv := testenv.OtherUser(t)
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	e := newCLIEnv(t)
	agent := e.startAgent()
	sock := agent.client.Path
	// Open the file modes wide on purpose: only the peer check is left.
	os.Chmod(filepath.Dir(filepath.Dir(sock)), 0o755)
	os.Chmod(filepath.Dir(sock), 0o777)
	os.Chmod(sock, 0o777)
	cmd := exec.Command(setpriv, testenv.AsNobody(curl, "-sS", "--max-time", "5",
		"--unix-socket", sock, "http://"+ipc.Host+ipc.PathHealth)...)
	out, err := cmd.CombinedOutput()
	if err == nil || strings.Contains(string(out), `"ok"`) {
		t.Fatalf("a client running as nobody got an answer: %s", out)
	}
	if !strings.Contains(agent.log.String(), "refused a socket connection from another user") || !strings.Contains(agent.log.String(), "peer_uid=65534") {
		t.Fatalf("refusal not logged:\n%s", agent.log.String())
	}
	// The same request as ourselves works.
	if out, err := exec.Command(curl, "-sS", "--unix-socket", sock, "http://"+ipc.Host+ipc.PathHealth).CombinedOutput(); err != nil || !strings.Contains(string(out), `"ok"`) {
		t.Fatalf("own uid refused: %v %s", err, out)
	}
}

func TestTokenWithoutAgent(t *testing.T) {
	e := newCLIEnv(t)
	code, stdout, stderr := e.run("token", "--no-autostart")
	if code != exitUnreachable || stdout != "" || !strings.Contains(stderr, "kc-agent run") {
		t.Fatalf("exit %d, %d bytes on stdout, stderr %s", code, len(stdout), stderr)
	}
	code, _, stderr = e.run("status")
	if code != exitUnreachable {
		t.Fatalf("status without agent: exit %d %s", code, stderr)
	}
	if code, _, _ := e.run("token", "--format", "yaml"); code != exitUsage {
		t.Fatalf("bad format: exit %d", code)
	}
	if code, _, _ := e.run("token", "--min-valid", "-3s"); code != exitUsage {
		t.Fatalf("negative min-valid: exit %d", code)
	}
}

func TestTokenFormats(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.login(keycloak.RealmTest, "mallory", "mallory-pw")
	e.startAgent()
	code, raw, _ := e.run("token", "--profile", e.profile)
	if code != 0 || !strings.HasSuffix(raw, "\n") || strings.Count(raw, "\n") != 1 || len(raw) < 100 {
		t.Fatalf("raw: exit %d, %d bytes", code, len(raw))
	}
	tok := strings.TrimSpace(raw)
	e.addSecret(tok)
	if code, out, _ := e.run("token", "--profile", e.profile, "--format", "header"); code != 0 || out != "Authorization: Bearer "+tok+"\n" {
		t.Fatal("header format wrong")
	}
	if code, out, _ := e.run("token", "--profile", e.profile, "--format", "env"); code != 0 || out != "export KC_AGENT_ACCESS_TOKEN='"+tok+"'\n" {
		t.Fatal("env format wrong")
	}
	// A token for a scope set of its own, cached apart from the default.
	code, scoped, stderr := e.run("token", "--profile", e.profile, "--scope", "openid", "--scope", "profile")
	if code != 0 || strings.TrimSpace(scoped) == tok || len(scoped) < 100 {
		t.Fatalf("scoped token: exit %d %s", code, stderr)
	}
	e.addSecret(strings.TrimSpace(scoped))
	if code, again, _ := e.run("token", "--profile", e.profile, "--scope", "profile", "--scope", "openid"); code != 0 || again != scoped {
		t.Fatal("the same scope set (in another order) was not served from its cache")
	}
	j, code, _ := e.tokenJSON()
	if code != 0 || j.AccessToken != tok || j.ExpiresAt.Location() != time.UTC || j.ExpiresIn < 50 {
		t.Fatalf("json format: %v", j)
	}
	// A token from the agent is accepted by Keycloak's userinfo endpoint.
	req, _ := http.NewRequest("GET", e.keycloak().Issuer(keycloak.RealmTest)+"/protocol/openid-connect/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("userinfo with the served token: HTTP %d", resp.StatusCode)
	}
	var ui struct {
		PreferredUsername string `json:"preferred_username"`
	}
	json.NewDecoder(resp.Body).Decode(&ui)
	resp.Body.Close()
	if ui.PreferredUsername != "mallory" {
		t.Fatalf("token belongs to %q", ui.PreferredUsername)
	}
}

// The real binary autostarts an agent in the background when none runs.
func TestTokenAutostart(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.login(keycloak.RealmTest, "mallory", "mallory-pw")
	bin := buildBinary(t)
	env := append(os.Environ(), "KC_AGENT_NO_AUTOSTART=")
	cmd := exec.Command(bin, "token", "--profile", e.profile)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	e.mu.Lock()
	e.outputs = append(e.outputs, stderr.String())
	e.mu.Unlock()
	if err != nil || len(bytes.TrimSpace(out)) < 100 {
		logData, _ := os.ReadFile(filepath.Join(os.Getenv("KC_AGENT_STATE_DIR"), "agent.log"))
		e.record(string(logData))
		t.Fatalf("autostarting token: %v %s\nagent log:\n%s", err, stderr.String(), logData)
	}
	e.addSecret(strings.TrimSpace(string(out)))
	c, _ := ipc.NewClient()
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatalf("no agent after autostart: %v", err)
	}
	defer func() {
		if p, err := os.FindProcess(st.PID); err == nil {
			p.Signal(os.Interrupt)
		}
		time.Sleep(200 * time.Millisecond)
		logData, _ := os.ReadFile(filepath.Join(os.Getenv("KC_AGENT_STATE_DIR"), "agent.log"))
		e.mu.Lock()
		e.outputs = append(e.outputs, string(logData))
		e.mu.Unlock()
	}()
	if st.PID == os.Getpid() {
		t.Fatal("agent runs in the test process")
	}
}
