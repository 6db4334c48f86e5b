//go:build unix

package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

// squatLog is a file in a directory another user may write to, where a
// squatter started by asNobody records what it receives.
func squatLog(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kcq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	return filepath.Join(dir, "received")
}

func waitReadyFile(t *testing.T, log string) {
	t.Helper()
	waitFor(t, func() bool { _, err := os.Stat(log + ".ready"); return err == nil }, "the other user's listener")
}

// A route's cleartext loopback upstream port held by another user: the
// request through the route fails with 502 naming the uid, the squatter
// receives not one byte (no Authorization), the refusal is logged once
// and shown in status and doctor, and git-credential gives git nothing
// for a cleartext loopback port (it points at git setup). A route to the
// user's own loopback server still carries the token.
func TestCleartextUpstreamOfAnotherUser(t *testing.T) {
	testenv.OtherUser(t)
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.login(keycloak.RealmTest, "alice", "alice-pw")
	squatted := freeAddr(t)
	host, port, _ := net.SplitHostPort(squatted)
	received := squatLog(t)
	asNobody(t, squatter, host, port, received)
	waitReadyFile(t, received)
	mine, mineSeen := testenv.PlainServer(t)
	proxyAddr := freeAddr(t)
	cfgPath := os.Getenv("KC_AGENT_CONFIG")
	data, _ := os.ReadFile(cfgPath)
	extra := fmt.Sprintf(`routes:
  - name: dev
    upstream: http://%s/api
    profile: %s
  - name: devrule
    upstream: http://%s
    profile: %s
    intercept: true
  - name: mine
    upstream: %s
    profile: %s
proxy:
  listen: %s
`, squatted, e.profile, squatted, e.profile, mine, e.profile, proxyAddr)
	if err := os.WriteFile(cfgPath, append(data, extra...), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := e.startAgent()
	hc := &http.Client{Timeout: 15 * time.Second}

	// The reverse route, twice: 502 with a kc-agent error body naming the uid.
	for i := 0; i < 2; i++ {
		resp, err := hc.Get("http://" + proxyAddr + "/dev/items")
		if err != nil {
			t.Fatalf("request through the squatted route: %v", err)
		}
		var body ipc.Error
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || body.Code != ipc.CodeUpstream || !strings.Contains(body.Message, "uid 65534") {
			t.Fatalf("squatted route: %d %q %q", resp.StatusCode, body.Code, body.Message)
		}
	}
	// The forward proxy's plain-http rule for the same origin.
	code, stdout, stderr := e.run("env")
	if code != 0 {
		t.Fatalf("env: %s", stderr)
	}
	var proxyURL *url.URL
	for _, line := range strings.Split(stdout, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimPrefix(line, "export "), "HTTP_PROXY="); ok {
			proxyURL, _ = url.Parse(strings.Trim(v, "'"))
		}
	}
	if proxyURL == nil {
		t.Fatalf("env printed no HTTP_PROXY:\n%s", stdout)
	}
	fwd := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := fwd.Get("http://" + squatted + "/items")
	if err != nil {
		t.Fatalf("forward request to the squatted origin: %v", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(msg), "uid 65534") {
		t.Fatalf("forward rule to the squatted origin: %d %s", resp.StatusCode, msg)
	}

	// The user's own loopback server still gets the token.
	resp, err = hc.Get("http://" + proxyAddr + "/mine/items")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen := mineSeen()
	if resp.StatusCode != http.StatusOK || len(seen) != 1 || !seen[0].Authorization {
		t.Fatalf("own loopback upstream: %d, seen %+v", resp.StatusCode, seen)
	}

	// git asks for a credential for a cleartext loopback port, squatted or
	// the user's own: nothing on stdout (git's connection is never
	// checked), and the way out on stderr.
	mineHost := strings.TrimPrefix(mine, "http://")
	for _, h := range []string{squatted, mineHost} {
		code, stdout, stderr = e.runHelper("protocol=http\nhost="+h+"\npath=api/repo.git\n\n", "git-credential", "get")
		if code != exitError || stdout != "" || !strings.Contains(stderr, "kc-agent git setup http://"+h+"/api/repo.git") {
			t.Fatalf("git-credential for %s: exit %d, stdout %d bytes, stderr %s", h, code, len(stdout), stderr)
		}
	}

	if got, _ := os.ReadFile(received); len(got) > 0 {
		t.Fatalf("%d bytes reached the other user's listener", len(got))
	}
	if n := strings.Count(agent.log.String(), "refused to send a token in the clear"); n != 1 {
		t.Errorf("%d log lines for 3 refusals to one port within 10 s, want 1:\n%s", n, agent.log.String())
	}
	_, out, _ := e.run("status")
	if !strings.Contains(out, "REFUSED") || !strings.Contains(out, squatted+": uid 65534 listens there") || !strings.Contains(out, "3 time(s)") {
		t.Errorf("status does not name the other user:\n%s", out)
	}
	_, out, _ = e.run("doctor")
	if !strings.Contains(out, "FAIL  route dev") || !strings.Contains(out, "served by uid 65534") || !strings.Contains(out, "ok    route mine") {
		t.Errorf("doctor does not flag the squatted upstream:\n%s", out)
	}
}

// forwarder is a transparent TCP forwarder on a fixed loopback address,
// like `kubectl port-forward`: Keycloak (hostname-strict off) issues
// tokens for the Host it is reached by, so the profile's issuer is the
// forwarder's address.
type forwarder struct {
	ln     net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]bool
	target string
}

func startForwarder(t *testing.T, addr, target string) *forwarder {
	t.Helper()
	var ln net.Listener
	waitFor(t, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, "the forwarder's port")
	f := &forwarder{ln: ln, conns: map[net.Conn]bool{}, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.pipe(c)
		}
	}()
	t.Cleanup(f.stop)
	return f
}

func (f *forwarder) pipe(c net.Conn) {
	u, err := net.Dial("tcp", f.target)
	if err != nil {
		c.Close()
		return
	}
	f.mu.Lock()
	f.conns[c], f.conns[u] = true, true
	f.mu.Unlock()
	go func() { io.Copy(u, c); u.Close() }()
	io.Copy(c, u)
	c.Close()
}

func (f *forwarder) stop() {
	f.ln.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
}

// issuerSquatter serves, on argv[1]:argv[2] as another user, a discovery
// document that points at itself, and records every request it gets
// (line, headers, body) in argv[3].
const issuerSquatter = `
import http.server, json, sys
host, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
base = "http://%s:%d" % (host, port)
class H(http.server.BaseHTTPRequestHandler):
    def record(self, body=b""):
        with open(log, "ab") as f:
            f.write(self.requestline.encode() + b"\n" + bytes(self.headers) + body + b"\n")
    def answer(self, code, doc):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self.record()
        realm = self.path.split("/.well-known/")[0]
        iss = base + realm
        oc = iss + "/protocol/openid-connect"
        self.answer(200, {"issuer": iss, "authorization_endpoint": oc + "/auth", "token_endpoint": oc + "/token",
            "jwks_uri": oc + "/certs", "end_session_endpoint": oc + "/logout", "revocation_endpoint": oc + "/revoke"})
    def do_POST(self):
        self.record(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.answer(400, {"error": "invalid_grant", "error_description": "Stale token"})
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
s = S((host, port), H)
open(log + ".ready", "w").close()
s.serve_forever()
`

// The issuer is a loopback port-forward to Keycloak. When the forward
// stops and another user binds its port with a discovery document of its
// own, a forced refresh fails (exit 1, naming the uid) and the offline
// token never reaches that listener; status and doctor say who holds the
// port. Once the forward is back, the profile works again without a new
// login.
func TestCleartextIssuerOfAnotherUser(t *testing.T) {
	testenv.OtherUser(t)
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	target := strings.TrimPrefix(kc.BaseURL, "http://")
	fw := startForwarder(t, addr, target)
	issuer := "http://" + addr + "/realms/" + keycloak.RealmTest

	wait := browse(keycloak.NewFormBrowser("alice", "alice-pw"))
	if code, _, stderr := e.run("login", issuer, "--profile", e.profile, "--timeout", "60s"); code != 0 {
		t.Fatalf("login through the forwarder: exit %d: %s", code, stderr)
	}
	if err := wait(); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if _, err := e.stored(); err != nil {
		t.Fatalf("nothing stored: %v", err)
	}
	e.startAgent()
	tok, code, stderr := e.tokenJSON()
	if code != 0 {
		t.Fatalf("token through the forwarder: exit %d: %s", code, stderr)
	}
	if iss := tokenIssuer(tok.AccessToken); iss != issuer {
		t.Fatalf("Keycloak issued the token for %q, not the forwarder's %q", iss, issuer)
	}

	fw.stop()
	received := squatLog(t)
	squat := asNobody(t, issuerSquatter, host, port, received)
	waitReadyFile(t, received)

	code, stdout, stderr := e.run("token", "--profile", e.profile, "--force-refresh")
	if code != exitError || stdout != "" || !strings.Contains(stderr, "uid 65534") {
		t.Fatalf("forced refresh with another user on the issuer's port: exit %d, stdout %d bytes, stderr %s", code, len(stdout), stderr)
	}
	_, out, _ := e.run("status", "--profile", e.profile)
	if !strings.Contains(out, addr+": uid 65534 listens there") {
		t.Errorf("status does not name the other user:\n%s", out)
	}
	_, out, _ = e.run("doctor", "--profile", e.profile)
	if !strings.Contains(out, "FAIL  issuer of "+e.profile) || !strings.Contains(out, "served by uid 65534") {
		t.Errorf("doctor does not flag the issuer's port:\n%s", out)
	}
	got, _ := os.ReadFile(received)
	if strings.Contains(string(got), "refresh_token") {
		t.Fatal("the other user's listener received a refresh token")
	}
	if len(got) > 0 {
		t.Fatalf("the other user's listener received %d bytes", len(got))
	}

	// The port-forward comes back: the same login works again.
	squat.Process.Kill()
	squat.Wait()
	startForwarder(t, addr, target)
	waitFor(t, func() bool {
		_, code, _ := e.tokenJSON("--force-refresh")
		return code == 0
	}, "a token once the forwarder is back")
}

// tokenIssuer reads the iss claim of a JWT without verifying it.
func tokenIssuer(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	json.Unmarshal(payload, &c)
	return c.Iss
}
