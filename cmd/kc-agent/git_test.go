//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// gitSeen is what the git server recorded of one request: never the token,
// only a fingerprint of it.
type gitSeen struct {
	Method, Path string
	Scheme       string // "basic", "bearer" or ""
	User         string // the Basic user name
	Token        string // fingerprint
	OK           bool
	At, Expiry   time.Time
}

// gitServer is git http-backend behind HTTPS and a check of the token at
// Keycloak, like a git server behind an OIDC proxy: Basic with the token as
// the password, or Bearer.
type gitServer struct {
	URL  string // https://localhost:PORT/git
	root string

	verifier *gooidc.IDTokenVerifier
	backend  http.Handler
	// slow delays the pack of a fetch, after its first bytes, by this long.
	slow       atomic.Int64
	rejectNext atomic.Bool

	mu   sync.Mutex
	seen []gitSeen
}

func fingerprint(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:6])
}

func startGitServer(t *testing.T, ca *testenv.TestCA, issuer string) *gitServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := newGitServer(t, issuer)
	gs.serve(t, tls.NewListener(ln, ca.TLSConfig(t)))
	gs.URL = "https://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/git"
	return gs
}

func (gs *gitServer) serve(t *testing.T, ln net.Listener) {
	srv := &http.Server{Handler: gs, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func newGitServer(t *testing.T, issuer string) *gitServer {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	p, err := gooidc.NewProvider(context.Background(), issuer)
	if err != nil {
		t.Fatal(err)
	}
	gs := &gitServer{root: t.TempDir(), verifier: p.Verifier(&gooidc.Config{ClientID: "warehouse-api"})}
	gs.backend = &cgi.Handler{Path: backend, Root: "/git",
		Env: []string{"GIT_PROJECT_ROOT=" + gs.root, "GIT_HTTP_EXPORT_ALL=1"}}
	return gs
}

func (gs *gitServer) Seen() []gitSeen {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return append([]gitSeen(nil), gs.seen...)
}

func (gs *gitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := gitSeen{Method: r.Method, Path: r.URL.Path, At: time.Now()}
	var token string
	if user, pass, ok := r.BasicAuth(); ok {
		s.Scheme, s.User, token = "basic", user, pass
	} else if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		s.Scheme, token = "bearer", tok
	}
	var verr error = fmt.Errorf("no credential")
	if token != "" {
		s.Token = fingerprint(token)
		var idt *gooidc.IDToken
		if idt, verr = gs.verifier.Verify(r.Context(), token); verr == nil {
			s.Expiry = idt.Expiry
		}
	}
	if verr == nil && gs.rejectNext.CompareAndSwap(true, false) {
		verr = fmt.Errorf("refused by the test")
	}
	s.OK = verr == nil
	gs.mu.Lock()
	gs.seen = append(gs.seen, s)
	gs.mu.Unlock()
	if verr != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	if d := time.Duration(gs.slow.Load()); d > 0 && strings.HasSuffix(r.URL.Path, "/git-upload-pack") {
		// Only the request that carries the pack ("want" lines), not the
		// ls-refs before it.
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte("want ")) {
			w = &slowWriter{ResponseWriter: w, delay: d}
		}
	}
	gs.backend.ServeHTTP(w, r)
}

// slowWriter sends the first bytes, then stalls once: a long transfer.
type slowWriter struct {
	http.ResponseWriter
	delay   time.Duration
	stalled bool
}

func (w *slowWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if !w.stalled && err == nil {
		w.stalled = true
		http.NewResponseController(w.ResponseWriter).Flush()
		time.Sleep(w.delay)
	}
	return n, err
}

// gitFixture: a logged-in profile, an agent, a git server with a bare
// repository team/repo.git, a route to it, and a git of its own (HOME and
// global config in a temp dir, no prompts, the test CA trusted).
type gitFixture struct {
	e     *cliEnv
	agent *agentProc
	ca    *testenv.TestCA
	gs    *gitServer
	home  string
	repo  string // the clone URL
}

func newGitFixture(t *testing.T, realm, user, routeExtra string) *gitFixture {
	return newGitFixtureWith(t, realm, user, routeExtra, startGitServer)
}

// newGitFixtureWith is newGitFixture with the git server start wants.
func newGitFixtureWith(t *testing.T, realm, user, routeExtra string, start func(*testing.T, *testenv.TestCA, string) *gitServer) *gitFixture {
	t.Helper()
	requireTool(t, "git")
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.login(realm, user, user+"-pw")
	f := &gitFixture{e: e, ca: testenv.NewTestCA(t), home: t.TempDir()}
	f.gs = start(t, f.ca, e.keycloak().Issuer(realm))
	f.repo = f.gs.URL + "/team/repo.git"

	cfgPath := os.Getenv("KC_AGENT_CONFIG")
	data, _ := os.ReadFile(cfgPath)
	extra := fmt.Sprintf("routes:\n  - name: git\n    upstream: %s/team\n    profile: %s\n%sproxy:\n  listen: %s\n", f.gs.URL, e.profile, routeExtra, freeAddr(t))
	if err := os.WriteFile(cfgPath, append(data, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	f.agent = e.startAgent()

	t.Setenv("HOME", f.home)
	t.Setenv("GIT_CONFIG_GLOBAL", filepath.Join(f.home, ".gitconfig"))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("GIT_TERMINAL_PROMPT", "0")
	t.Setenv("GIT_ASKPASS", "")
	t.Setenv("SSH_ASKPASS", "")
	t.Setenv("GIT_SSL_CAINFO", f.ca.PEMPath)
	t.Setenv("GIT_AUTHOR_NAME", "Test")
	t.Setenv("GIT_AUTHOR_EMAIL", "test@example.com")
	t.Setenv("GIT_COMMITTER_NAME", "Test")
	t.Setenv("GIT_COMMITTER_EMAIL", "test@example.com")
	forbidBrowser(t)

	// The repository: a few commits with incompressible data, so the pack
	// is a real transfer.
	bare := filepath.Join(f.gs.root, "team", "repo.git")
	work := t.TempDir()
	f.git(t, "", "init", "-q", "--bare", "-b", "main", bare)
	f.git(t, "", "-C", bare, "config", "http.receivepack", "true")
	f.git(t, "", "init", "-q", "-b", "main", work)
	for i := range 3 {
		blob := make([]byte, 256<<10)
		for j := range blob {
			blob[j] = byte((i*7919 + j*j*31) >> 3)
		}
		os.WriteFile(filepath.Join(work, fmt.Sprintf("data-%d.bin", i)), blob, 0o644)
		f.git(t, "", "-C", work, "add", ".")
		f.git(t, "", "-C", work, "commit", "-q", "-m", fmt.Sprintf("commit %d", i))
	}
	f.git(t, "", "-C", work, "push", "-q", bare, "main")
	return f
}

// git runs git and fails the test on error; its output goes to the leak
// check. want "" means success is expected.
func (f *gitFixture) git(t *testing.T, wantErr string, args ...string) string {
	t.Helper()
	out, err := f.gitTry(args...)
	if wantErr == "" && err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if wantErr != "" && (err == nil || !strings.Contains(out, wantErr)) {
		t.Fatalf("git %s: want failure with %q, got %v\n%s", strings.Join(args, " "), wantErr, err, out)
	}
	return out
}

func (f *gitFixture) gitTry(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Stdin = nil // never a terminal: git must not prompt
	out, err := cmd.CombinedOutput()
	f.e.record(string(out))
	return string(out), err
}

// Real git clones and pushes over HTTPS through kc-agent git-credential:
// the clone outlasts its token, the push after it gets a new one, and a
// refused token (erase) makes the next command get a fresh one.
func TestGitCloneAndPush(t *testing.T) {
	f := newGitFixture(t, keycloak.RealmShort, "gil", "")
	// A storage helper the user already had: setup keeps it away from the
	// routed URL, so the token never lands in ~/.git-credentials.
	f.git(t, "", "config", "--global", "credential.helper", "store")
	code, _, stderr := f.e.run("git", "setup", "--command", kcAgentCommand(t), "--min-valid", "5s", f.gs.URL+"/team")
	if code != 0 || !strings.Contains(stderr, "git now asks kc-agent for") {
		t.Fatalf("git setup: exit %d: %s", code, stderr)
	}
	helpers := f.git(t, "", "config", "--global", "--get-all", "credential."+f.gs.URL+"/team.helper")
	if helpers != "\n!"+kcAgentCommand(t)+" git-credential --min-valid 5s\n" {
		t.Fatalf("helpers for the URL: %q", helpers)
	}
	if strings.Contains(stderr, "warning") {
		t.Fatalf("setup warned about a helper configured before it: %s", stderr)
	}
	// A storage helper configured after kc-agent's would be handed the
	// token: setup names it.
	f.git(t, "", "config", "--global", "--add", "credential."+f.gs.URL+".helper", "cache") // a new section, after ours
	code, _, stderr = f.e.run("git", "setup", "--command", kcAgentCommand(t), "--min-valid", "5s", f.gs.URL+"/team")
	if code != 0 || !strings.Contains(stderr, `warning: git also runs the credential helper "cache"`) {
		t.Fatalf("setup did not warn about a later helper: exit %d: %s", code, stderr)
	}
	f.git(t, "", "config", "--global", "--unset", "credential."+f.gs.URL+".helper", "cache")

	// A clone whose pack takes longer than a token lives (10 s).
	f.gs.slow.Store(int64(12 * time.Second))
	start := time.Now()
	clone := filepath.Join(t.TempDir(), "clone")
	f.git(t, "", "clone", "-q", f.repo, clone)
	f.gs.slow.Store(0)
	var first gitSeen
	for _, s := range f.gs.Seen() {
		if s.OK {
			first = s
			break
		}
	}
	if first.Scheme != "basic" || first.User != "oauth2" || !time.Now().After(first.Expiry) {
		t.Fatalf("the clone (%s) authenticated as %+v; its token should have expired during it", time.Since(start), first)
	}

	// A push after that token expired: git asks again and gets a new one.
	os.WriteFile(filepath.Join(clone, "new.txt"), []byte("pushed\n"), 0o644)
	f.git(t, "", "-C", clone, "add", "new.txt")
	f.git(t, "", "-C", clone, "commit", "-q", "-m", "push over https")
	f.git(t, "", "-C", clone, "push", "-q", "origin", "main")
	log := f.git(t, "", "-C", filepath.Join(f.gs.root, "team", "repo.git"), "log", "--oneline", "-1")
	if !strings.Contains(log, "push over https") {
		t.Fatalf("the push did not land: %s", log)
	}
	tokens := map[string]bool{}
	for _, s := range f.gs.Seen() {
		if s.OK {
			tokens[s.Token] = true
			if left := s.Expiry.Sub(s.At); s.Method == http.MethodGet && left < 4*time.Second {
				t.Errorf("git started with a token that had only %s left (min-valid 5s)", left)
			}
		}
	}
	if len(tokens) < 2 {
		t.Fatalf("clone and push used %d tokens; the push should have had a new one", len(tokens))
	}

	if _, err := os.Stat(filepath.Join(f.home, ".git-credentials")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the store helper kept a credential (%v)", err)
	}

	// The server refuses a token: git erases it (kc-agent refreshes), and
	// the next command brings a token issued after that.
	before := len(f.gs.Seen())
	f.gs.rejectNext.Store(true)
	f.git(t, "Authentication failed", "-C", clone, "fetch", "-q", "origin")
	var refused string
	for _, s := range f.gs.Seen()[before:] {
		if s.Scheme != "" && !s.OK {
			refused = s.Token
		}
	}
	f.git(t, "", "-C", clone, "fetch", "-q", "origin")
	seen := f.gs.Seen()
	if last := seen[len(seen)-1]; !last.OK || last.Token == refused || refused == "" {
		t.Fatalf("after the refusal git sent the same token again, or none (%+v)", last)
	}
}

// The git credential protocol, request by request, against a real agent:
// the git 2.46 authtype exchange, the password form of older git, hosts
// without a route, erase, and a login that is gone.
func TestGitCredentialProtocol(t *testing.T) {
	f := newGitFixture(t, keycloak.RealmTest, "gwen", "    git_username: x-token-auth\n")
	host := strings.TrimPrefix(strings.TrimSuffix(f.gs.URL, "/git"), "https://")
	request := func(extra string) string {
		return "protocol=https\nhost=" + host + "\npath=git/team/repo.git\n" + extra + "\n"
	}
	parse := func(out string) map[string]string {
		kv := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, _ := strings.Cut(line, "=")
			kv[k] = v
		}
		return kv
	}
	// A Bearer request with the credential reaches the repository.
	bearerOK := func(tok string) bool {
		pool := x509.NewCertPool()
		pool.AddCert(f.ca.Cert)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		req, _ := http.NewRequest("GET", f.repo+"/info/refs?service=git-upload-pack", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}

	// git 2.46+: authtype.
	code, stdout, stderr := f.e.runHelper(request("capability[]=authtype\ncapability[]=state\nusername=gwen"), "git-credential", "get")
	kv := parse(stdout)
	f.e.addSecret(kv["credential"])
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || stderr != "" || len(lines) != 4 || lines[0] != "capability[]=authtype" ||
		kv["authtype"] != "Bearer" || kv["ephemeral"] != "1" || kv["credential"] == "" {
		t.Fatalf("authtype answer: exit %d, %d lines, keys %v, stderr %q", code, len(lines), keysOf(kv), stderr)
	}
	if !bearerOK(kv["credential"]) {
		t.Fatal("the Bearer credential was refused")
	}

	// Older git: the route's user name, the token as password, its expiry.
	code, stdout, stderr = f.e.runHelper(request(""), "git-credential", "get")
	kv = parse(stdout)
	f.e.addSecret(kv["password"])
	exp, _ := strconv.ParseInt(kv["password_expiry_utc"], 10, 64)
	if code != 0 || stderr != "" || kv["username"] != "x-token-auth" || kv["password"] == "" || kv["capability[]"] != "" || kv["credential"] != "" {
		t.Fatalf("password answer: exit %d, keys %v, user %q, stderr %q", code, keysOf(kv), kv["username"], stderr)
	}
	if left := time.Until(time.Unix(exp, 0)); left < 28*time.Second || left > 61*time.Second {
		t.Fatalf("password_expiry_utc is %s away; the realm's tokens live 60s and git gets at least 30s", left)
	}
	first := kv["password"]

	// Hosts without a route: nothing at all.
	for _, req := range []string{
		"protocol=https\nhost=github.com\npath=team/repo.git\n",
		"protocol=https\nhost=" + host + "\npath=git/other/repo.git\n",
		"protocol=https\nhost=" + host + "\n", // no useHttpPath: the route's prefix can not be checked
		"protocol=http\nhost=" + host + "\npath=git/team/repo.git\n",
		"url=https://" + host + "/git/team/../other.git\n",
	} {
		code, stdout, stderr := f.e.runHelper(req, "git-credential", "get")
		if code != 0 || stdout != "" || stderr != "" {
			t.Fatalf("unrouted %q: exit %d, stdout %d bytes, stderr %q", req, code, len(stdout), stderr)
		}
	}

	// store is ignored; erase refreshes now, so the next get has a newer
	// token.
	if code, stdout, stderr := f.e.runHelper(request("username=x-token-auth\npassword="+first), "git-credential", "store"); code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("store: exit %d %q", code, stderr)
	}
	if code, stdout, stderr := f.e.runHelper(request("username=x-token-auth\npassword="+first), "git-credential", "erase"); code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("erase: exit %d %q", code, stderr)
	}
	_, stdout, _ = f.e.runHelper(request(""), "git-credential", "get")
	kv = parse(stdout)
	f.e.addSecret(kv["password"])
	if kv["password"] == "" || kv["password"] == first {
		t.Fatal("after erase, get returned the erased token")
	}

	// The login is gone: nothing on stdout, the reason on stderr.
	if code, _, stderr := f.e.run("logout", "--profile", f.e.profile); code != 0 {
		t.Fatalf("logout: %s", stderr)
	}
	code, stdout, stderr = f.e.runHelper(request("capability[]=authtype"), "git-credential", "get")
	if code != exitLoginRequired || stdout != "" || !strings.Contains(stderr, "kc-agent: error: profile \""+f.e.profile+"\" is not logged in") ||
		!strings.Contains(stderr, "kc-agent: hint: run `kc-agent login --profile "+f.e.profile+"`") {
		t.Fatalf("get after logout: exit %d, stdout %d bytes, stderr %q", code, len(stdout), stderr)
	}
	// And real git fails at once, without a prompt.
	f.git(t, "", "config", "--global", "credential.helper", "!"+kcAgentCommand(t)+" git-credential")
	f.git(t, "", "config", "--global", "credential.useHttpPath", "true")
	out := f.git(t, "terminal prompts disabled", "ls-remote", f.repo)
	if !strings.Contains(out, "kc-agent: error:") {
		t.Fatalf("git does not show kc-agent's reason:\n%s", out)
	}
}

func keysOf(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
