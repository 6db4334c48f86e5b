//go:build unix

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

type proxyFixture struct {
	e      *cliEnv
	agent  *agentProc
	ca     *testenv.TestCA
	rs     *testenv.ResourceServer // rule: reverse route "warehouse" (base /v1) + intercept
	other  *testenv.ResourceServer // trusted, but no rule
	bad    *testenv.ResourceServer // certificate nobody trusts, route "untrusted"
	plain  string
	plainS func() []testenv.SeenRequest
	addr   string
	own    string // the listen address of route "own"
	vars   map[string]string
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newProxyFixture(t *testing.T, realm, user, password string) *proxyFixture {
	t.Helper()
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	e.login(realm, user, password)
	f := &proxyFixture{e: e, ca: testenv.NewTestCA(t)}
	f.rs = testenv.StartResourceServer(t, f.ca, kc.Issuer(realm), "warehouse-api")
	f.other = testenv.StartResourceServer(t, f.ca, kc.Issuer(realm), "warehouse-api")
	f.bad = testenv.StartResourceServer(t, nil, kc.Issuer(realm), "warehouse-api")
	f.plain, f.plainS = testenv.PlainServer(t)
	f.addr = freeAddr(t)
	f.own = freeAddr(t)
	cfgPath := os.Getenv("KC_AGENT_CONFIG")
	data, _ := os.ReadFile(cfgPath)
	extra := fmt.Sprintf(`routes:
  - name: warehouse
    upstream: %s/v1
    profile: %s
    intercept: true
  - name: untrusted
    upstream: %s
    profile: %s
  - name: own
    upstream: %s
    profile: %s
    listen: %s
proxy:
  listen: %s
  ca_file: %s
`, f.rs.URL, e.profile, f.bad.URL, e.profile, f.rs.URL, e.profile, f.own, f.addr, f.ca.PEMPath)
	if err := os.WriteFile(cfgPath, append(data, []byte(extra)...), 0o600); err != nil {
		t.Fatal(err)
	}
	f.agent = e.startAgent()
	code, stdout, stderr := e.run("env")
	if code != 0 {
		t.Fatalf("env: %s", stderr)
	}
	f.vars = map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		kv := strings.TrimPrefix(line, "export ")
		k, v, _ := strings.Cut(kv, "=")
		f.vars[k] = strings.Trim(v, "'")
	}
	return f
}

// clientEnv is the environment a notebook gets from `kc-agent env`, except
// that NO_PROXY leaves out localhost: the test APIs live there, unlike real
// ones, and must be reached through the proxy.
func (f *proxyFixture) clientEnv() []string {
	env := os.Environ()
	for k, v := range f.vars {
		env = append(env, k+"="+v)
	}
	return append(env, "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
}

func (f *proxyFixture) cmd(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	c := exec.Command(name, args...)
	c.Env = f.clientEnv()
	out, err := c.CombinedOutput()
	return string(out), err
}

func (f *proxyFixture) base() string { return "http://" + f.addr + "/warehouse" }

func TestProxyReverseRoute(t *testing.T) {
	f := newProxyFixture(t, keycloak.RealmTest, "alice", "alice-pw")
	if got := f.vars["KC_AGENT_URL_WAREHOUSE"]; got != f.base() {
		t.Fatalf("KC_AGENT_URL_WAREHOUSE=%q, want %q", got, f.base())
	}
	// curl, with a bogus Authorization of its own that must be replaced.
	out, err := f.cmd(t, "curl", "-sS", "-f", "-H", "Authorization: Bearer bogus", f.base()+"/tables?x=1")
	if err != nil {
		t.Fatalf("curl through the reverse route: %v %s", err, out)
	}
	var who testenv.WhoAmI
	if json.Unmarshal([]byte(out), &who) != nil || who.User != "alice" || who.Path != "/v1/tables?x=1" || !slices.Contains(who.Roles, "analyst") {
		t.Fatalf("resource server answered %s", out)
	}
	// A route with a port of its own: no prefix.
	if got := f.vars["KC_AGENT_URL_OWN"]; got != "http://"+f.own {
		t.Fatalf("KC_AGENT_URL_OWN=%q", got)
	}
	out, err = f.cmd(t, "curl", "-sS", "-f", "http://"+f.own+"/reports")
	if err != nil || !strings.Contains(out, `"path":"/reports"`) || !strings.Contains(out, `"user":"alice"`) {
		t.Fatalf("route on its own port: %v %s", err, out)
	}
	py := `import os, requests
r = requests.get(os.environ["KC_AGENT_URL_WAREHOUSE"] + "/tables")
print(r.status_code, r.json()["user"])`
	out, err = f.cmd(t, "python3", "-c", py)
	if err != nil || strings.TrimSpace(out) != "200 alice" {
		t.Fatalf("python requests through the reverse route: %v %s", err, out)
	}
}

func TestProxyRefusals(t *testing.T) {
	f := newProxyFixture(t, keycloak.RealmTest, "alice", "alice-pw")
	code := func(args ...string) string {
		out, _ := f.cmd(t, "curl", append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...)
		return out
	}
	// Forward proxy without or with a wrong secret: 407.
	if c := code("--noproxy", "", "--proxy", "http://"+f.addr, f.plain+"/x"); c != "407" {
		t.Errorf("no proxy secret: %s", c)
	}
	if c := code("--noproxy", "", "--proxy", "http://kc:wrong@"+f.addr, f.plain+"/x"); c != "407" {
		t.Errorf("wrong proxy secret: %s", c)
	}
	if c := code("--proxy", "http://kc:wrong@"+f.addr, "--cacert", f.ca.PEMPath, f.rs.URL+"/x"); !strings.Contains(c, "407") {
		t.Errorf("wrong proxy secret on CONNECT: %s", c)
	}
	// Browser-made requests and non-loopback Host values on reverse routes.
	if c := code("-H", "Origin: https://evil.example.com", f.base()+"/x"); c != "403" {
		t.Errorf("Origin header: %s", c)
	}
	if c := code("-H", "Sec-Fetch-Site: cross-site", f.base()+"/x"); c != "403" {
		t.Errorf("Sec-Fetch-Site: %s", c)
	}
	if c := code("-H", "Host: rebind.example.com", f.base()+"/x"); c != "403" {
		t.Errorf("non-loopback Host: %s", c)
	}
	// An upstream whose certificate is not trusted: 502, nothing sent.
	if c := code("http://" + f.addr + "/untrusted/x"); c != "502" {
		t.Errorf("untrusted upstream: %s", c)
	}
	if n := len(f.bad.Seen()); n != 0 {
		t.Errorf("the untrusted upstream received %d requests", n)
	}
	// A redirect to another host is handed to the client, not followed; one
	// into the upstream is rewritten to the local route.
	hdrs, _ := f.cmd(t, "curl", "-sS", "-D", "-", "-o", "/dev/null", f.base()+"/redirect?to=https://elsewhere.example.com/steal")
	if !strings.Contains(hdrs, "302") || !strings.Contains(hdrs, "Location: https://elsewhere.example.com/steal") {
		t.Errorf("redirect to another host: %s", hdrs)
	}
	hdrs, _ = f.cmd(t, "curl", "-sS", "-D", "-", "-o", "/dev/null", f.base()+"/redirect?to="+url.QueryEscape(f.rs.URL+"/v1/other?a=b"))
	if !strings.Contains(hdrs, "Location: "+f.base()+"/other?a=b") {
		t.Errorf("redirect into the upstream not rewritten: %s", hdrs)
	}
	if c := code("http://" + f.addr + "/nosuchroute/x"); c != "404" {
		t.Errorf("unknown route: %s", c)
	}
}

// The interception checks that the TLS name and the Host match CONNECT.
func TestProxyInterceptSNIAndHost(t *testing.T) {
	f := newProxyFixture(t, keycloak.RealmTest, "alice", "alice-pw")
	_, port, _ := net.SplitHostPort(f.rs.Addr)
	target := "localhost:" + port
	secret := strings.TrimPrefix(strings.Split(f.vars["HTTPS_PROXY"], "@")[0], "http://kc:")
	connect := func() net.Conn {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		auth := base64.StdEncoding.EncodeToString([]byte("kc:" + secret))
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", target, target, auth)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", resp, err)
		}
		return c
	}
	// SNI for another name: the handshake is refused.
	c := connect()
	tc := tls.Client(c, &tls.Config{ServerName: "evil.example.com", InsecureSkipVerify: true})
	if err := tc.Handshake(); err == nil {
		t.Fatal("TLS with an SNI other than the CONNECT host succeeded")
	}
	c.Close()
	// Right SNI, wrong Host header inside: 421.
	c = connect()
	tc = tls.Client(c, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	fmt.Fprintf(tc, "GET /x HTTP/1.1\r\nHost: evil.example.com:%s\r\n\r\n", port)
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("Host mismatch: %v %v", resp, err)
	}
	c.Close()
	for _, s := range f.rs.Seen() {
		if strings.Contains(s.Host, "evil") {
			t.Fatal("a mismatched request reached the upstream")
		}
	}
}

func TestProxyRefusesOtherUID(t *testing.T) {
	setpriv := testenv.OtherUser(t)
	f := newProxyFixture(t, keycloak.RealmTest, "alice", "alice-pw")
	out, err := exec.Command(setpriv, testenv.AsNobody("curl", "-sS", "--max-time", "5", f.base()+"/x")...).CombinedOutput()
	if err == nil || strings.Contains(string(out), "alice") {
		t.Fatalf("a client running as nobody got through: %s", out)
	}
	if !strings.Contains(f.agent.log.String(), "proxy refused a connection from another user") {
		t.Fatal("refusal not logged")
	}
}

func TestProxyStreaming(t *testing.T) {
	f := newProxyFixture(t, keycloak.RealmTest, "alice", "alice-pw")
	const size = 200 << 20
	var peak atomic.Uint64
	stop := make(chan struct{})
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	resp, err := http.Get(f.base() + fmt.Sprintf("/big?n=%d", size))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	pr, pw := io.Pipe()
	go func() {
		io.CopyN(pw, zeroReader{}, size)
		pw.Close()
	}()
	resp, err = http.Post(f.base()+"/upload", "application/octet-stream", pr) // chunked
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	close(stop)
	if string(body) != fmt.Sprint(size) {
		t.Fatalf("upload: upstream counted %s", body)
	}
	if grown := int64(peak.Load()) - int64(base.HeapInuse); grown > 64<<20 {
		t.Fatalf("heap grew by %d MiB moving 2 x 200 MiB: not streamed", grown>>20)
	}

	// Server-sent events arrive one by one: the second is only sent after
	// the test has read the first through the proxy.
	resp, err = http.Get(f.base() + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	line, _ := br.ReadString('\n')
	if line != "data: one\n" {
		t.Fatalf("first event: %q", line)
	}
	f.rs.SSEAck <- struct{}{}
	br.ReadString('\n')
	line, _ = br.ReadString('\n')
	resp.Body.Close()
	if line != "data: two\n" {
		t.Fatalf("second event: %q (the first was buffered?)", line)
	}

	// A websocket-style upgrade: the token goes on the handshake, then the
	// stream is piped both ways.
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /warehouse/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", f.addr)
	rd := bufio.NewReader(c)
	wsResp, err := http.ReadResponse(rd, nil)
	if err != nil || wsResp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", wsResp, err)
	}
	fmt.Fprint(c, "hello\n")
	echo, _ := rd.ReadString('\n')
	if echo != "echo: hello\n" {
		t.Fatalf("websocket echo: %q", echo)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A client calling every 100 ms for three token lifetimes never gets a 401.
func TestProxyAcrossTokenLifetimes(t *testing.T) {
	f := newProxyFixture(t, keycloak.RealmShort, "alice", "alice-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 31*time.Second)
	defer cancel()
	calls := 0
	for ctx.Err() == nil {
		resp, err := http.Get(f.base() + "/tick")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("call %d: HTTP %d", calls, resp.StatusCode)
		}
		calls++
		time.Sleep(100 * time.Millisecond)
	}
	if calls < 100 {
		t.Fatalf("only %d calls", calls)
	}
}

// When the login is gone the proxy answers 401 with a kc-agent error and
// sends nothing upstream.
func TestProxyWithoutTokenRefuses(t *testing.T) {
	f := newProxyFixture(t, keycloak.RealmTest, "alice", "alice-pw")
	if code, _, _ := f.e.run("logout", "--profile", f.e.profile); code != 0 {
		t.Fatal("logout failed")
	}
	before := len(f.rs.Seen())
	resp, err := http.Get(f.base() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(body), `"error":"login_required"`) || !strings.Contains(string(body), "kc-agent login") {
		t.Fatalf("HTTP %d %s", resp.StatusCode, body)
	}
	if len(f.rs.Seen()) != before {
		t.Fatal("a request went upstream without a token")
	}
}
