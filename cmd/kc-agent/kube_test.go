//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

// kcAgentCommand is the kc-agent that kubectl, client-go and git run: the
// test binary, which TestMain (testscript) put on PATH under that name.
func kcAgentCommand(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kc-agent")
	if err != nil {
		t.Fatalf("kc-agent is not on PATH (TestMain puts it there): %v", err)
	}
	return p
}

// requireTool finds a client the test drives; the full suite (make test)
// fails without it, a bare go test skips.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("KC_AGENT_REQUIRE_SECRET_SERVICE") == "1" {
		t.Fatalf("%s is not installed (scripts/install-test-deps.sh installs it)", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

// runHelper runs a credential helper in-process with stdin. Its stdout is
// the token's way out; its stderr goes to the leak check.
func (e *cliEnv) runHelper(stdin string, args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &IOStreams{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	e.record(errb.String())
	return code, out.String(), errb.String()
}

// forbidBrowser makes any attempt to open a browser, in-process or from a
// child process, count; the test fails if one happened.
func forbidBrowser(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	mark := filepath.Join(dir, "opened")
	script := filepath.Join(dir, "browser")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntouch '"+mark+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BROWSER", script)
	var opened atomic.Bool
	openURLHook = func(string) error { opened.Store(true); return nil }
	t.Cleanup(func() {
		if _, err := os.Stat(mark); err == nil || opened.Load() {
			t.Error("a browser was opened")
		}
	})
}

type kubeFixture struct {
	e      *cliEnv
	agent  *agentProc
	ca     *testenv.TestCA
	idAPI  *testenv.ResourceServer // an API server taking ID tokens (aud kc-agent)
	accAPI *testenv.ResourceServer // one taking access tokens for aud warehouse-api
	user   string
}

// newKubeFixture logs user in, starts an agent and two API servers that
// validate bearer tokens at Keycloak, one per token type.
func newKubeFixture(t *testing.T, realm, user string) *kubeFixture {
	t.Helper()
	e, agent, _ := loggedInAgent(t, realm, user)
	issuer := e.keycloak().Issuer(realm)
	f := &kubeFixture{e: e, agent: agent, ca: testenv.NewTestCA(t), user: user}
	f.idAPI = testenv.StartResourceServer(t, f.ca, issuer, "kc-agent")
	f.accAPI = testenv.StartResourceServer(t, f.ca, issuer, "warehouse-api")
	forbidBrowser(t)
	return f
}

// client is what kubectl builds from a kubeconfig exec block: client-go's
// own exec plugin support, running the real kc-agent.
func (f *kubeFixture) client(t *testing.T, host, apiVersion string, args ...string) *http.Client {
	t.Helper()
	cfg := &rest.Config{
		Host:            host,
		TLSClientConfig: rest.TLSClientConfig{CAFile: f.ca.PEMPath},
		ExecProvider: &clientcmdapi.ExecConfig{
			APIVersion:      apiVersion,
			Command:         kcAgentCommand(t),
			Args:            append([]string{"kube-credential", "--profile", f.e.profile}, args...),
			InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
		},
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

// whoami calls the API server and returns who it says the caller is.
func whoami(hc *http.Client, url string) (string, int, error) {
	resp, err := hc.Get(url + "/api/v1/whoami")
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var who testenv.WhoAmI
	body, _ := io.ReadAll(resp.Body)
	json.Unmarshal(body, &who)
	return who.User, resp.StatusCode, nil
}

// client-go runs kube-credential and authenticates with the token it
// gives, in both ExecCredential versions and for both token types; each
// API server takes only the type it was set up for.
func TestKubeCredentialClientGo(t *testing.T) {
	f := newKubeFixture(t, keycloak.RealmTest, "kurt")
	for _, v := range []string{execV1, execV1beta1} {
		for _, tc := range []struct {
			tokenType   string
			api, wrong  *testenv.ResourceServer
			defaultType bool
		}{
			{"id", f.idAPI, f.accAPI, true},
			{"id", f.idAPI, f.accAPI, false},
			{"access", f.accAPI, f.idAPI, false},
		} {
			var args []string
			if !tc.defaultType {
				args = []string{"--token-type", tc.tokenType}
			}
			hc := f.client(t, tc.api.URL, v, args...)
			user, status, err := whoami(hc, tc.api.URL)
			if err != nil || status != 200 || user != f.user {
				t.Fatalf("%s %s %v: user %q, HTTP %d, %v", v, tc.tokenType, args, user, status, err)
			}
			if _, status, err := whoami(f.client(t, tc.wrong.URL, v, args...), tc.wrong.URL); err != nil || status != 401 {
				t.Fatalf("%s %s: the other API server answered %d %v; wrong token type sent?", v, tc.tokenType, status, err)
			}
		}
	}
	for _, rs := range []*testenv.ResourceServer{f.idAPI, f.accAPI} {
		for _, s := range rs.Seen() {
			if !s.Authorization {
				t.Fatal("client-go sent a request without a token")
			}
		}
	}
}

// The ExecCredential's expirationTimestamp is the token's expiry minus the
// margin; client-go re-runs the plugin then, so over several 10 s token
// lifetimes no request carries a token with less than the margin left.
func TestKubeCredentialExpiryMargin(t *testing.T) {
	f := newKubeFixture(t, keycloak.RealmShort, "kate")
	const margin = 4 * time.Second

	// The exact arithmetic, in-process: the same cached token as
	// `token --type id`, whose expiry is the agent's.
	t.Setenv("KUBERNETES_EXEC_INFO", `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}`)
	code, stdout, stderr := f.e.runHelper("", "kube-credential", "--profile", f.e.profile, "--expiry-margin", margin.String())
	if code != 0 || stderr != "" {
		t.Fatalf("kube-credential: exit %d: %s", code, stderr)
	}
	var ec struct {
		Kind, APIVersion string
		Status           struct{ ExpirationTimestamp, Token string }
	}
	if err := json.Unmarshal([]byte(stdout), &ec); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	f.e.addSecret(ec.Status.Token)
	if ec.Kind != "ExecCredential" || ec.APIVersion != execV1 {
		t.Fatalf("answered a %s %s", ec.APIVersion, ec.Kind)
	}
	os.Unsetenv("KUBERNETES_EXEC_INFO")
	code, stdout, stderr = f.e.runHelper("", "token", "--profile", f.e.profile, "--type", "id", "--format", "json")
	var tj struct {
		IDToken   string `json:"id_token"`
		ExpiresAt string `json:"expires_at"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &tj) != nil {
		t.Fatalf("token --type id: exit %d: %s", code, stderr)
	}
	f.e.addSecret(tj.IDToken)
	if tj.IDToken != ec.Status.Token {
		t.Fatal("kube-credential and token --type id gave different ID tokens from one cache")
	}
	exp, _ := time.Parse(time.RFC3339, tj.ExpiresAt)
	got, _ := time.Parse(time.RFC3339, ec.Status.ExpirationTimestamp)
	if !got.Equal(exp.Add(-margin)) {
		t.Fatalf("expirationTimestamp %s, want the token's expiry %s minus %s", got, exp, margin)
	}

	// Through client-go, over three token lifetimes.
	hc := f.client(t, f.idAPI.URL, execV1, "--expiry-margin", margin.String())
	deadline := time.Now().Add(25 * time.Second)
	calls := 0
	for time.Now().Before(deadline) {
		if _, status, err := whoami(hc, f.idAPI.URL); err != nil || status != 200 {
			t.Fatalf("call %d: HTTP %d %v", calls, status, err)
		}
		calls++
		time.Sleep(200 * time.Millisecond)
	}
	tokens := map[time.Time]bool{}
	for _, s := range f.idAPI.Seen() {
		tokens[s.Expiry] = true
		// exp is whole seconds: allow one.
		if left := s.Expiry.Sub(s.At); left < margin-time.Second {
			t.Fatalf("a request carried a token with %s left, less than the %s margin", left, margin)
		}
	}
	if len(tokens) < 3 {
		t.Fatalf("%d calls over 25 s used %d tokens; client-go should have re-run the plugin as each neared its expiry", calls, len(tokens))
	}
}

// After the session is revoked, kube-credential fails with exit 4 and the
// one-line error and hint, even when kubectl says it may interact; client-go
// reports the failure; no browser opens.
func TestKubeCredentialRevokedSession(t *testing.T) {
	f := newKubeFixture(t, keycloak.RealmShort, "kate")
	hc := f.client(t, f.idAPI.URL, execV1, "--expiry-margin", "2s")
	if _, status, err := whoami(hc, f.idAPI.URL); err != nil || status != 200 {
		t.Fatalf("before revocation: HTTP %d %v", status, err)
	}
	if err := f.e.keycloak().Admin().RevokeOfflineSessions(context.Background(), keycloak.RealmShort, f.user); err != nil {
		t.Fatal(err)
	}
	// The cached token lives on for a few seconds; then the plugin runs
	// again, the agent's refresh fails, and so does the request.
	var lastErr error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, status, err := whoami(hc, f.idAPI.URL)
		if err != nil {
			lastErr = err
			break
		}
		if status != 200 {
			t.Fatalf("a request went out with a bad token: HTTP %d", status)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if lastErr == nil || !strings.Contains(lastErr.Error(), "exit code 4") {
		t.Fatalf("client-go after revocation: %v", lastErr)
	}

	t.Setenv("KUBERNETES_EXEC_INFO", `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true}}`)
	code, stdout, stderr := f.e.runHelper("", "kube-credential", "--profile", f.e.profile)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if code != exitLoginRequired || stdout != "" || len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "kc-agent: error: ") || !strings.Contains(lines[0], "needs a new login") ||
		lines[1] != "kc-agent: hint: run `kc-agent login --profile "+f.e.profile+"` to sign in again" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
}

// kubectl itself, with a kubeconfig written by `kc-agent kubeconfig`, for
// both exec versions; after logout it shows kc-agent's reason.
func TestKubectl(t *testing.T) {
	kubectl := os.Getenv("KC_AGENT_TEST_KUBECTL") // another kubectl to try
	if kubectl == "" {
		kubectl = requireTool(t, "kubectl")
	}
	// Exec credential v1 came with kubectl 1.22; Debian's 1.20 speaks v1beta1.
	versions := []string{"v1", "v1beta1"}
	out, err := exec.Command(kubectl, "version", "--client", "-o", "json").Output()
	var kv struct {
		ClientVersion struct{ Minor string } `json:"clientVersion"`
	}
	if err != nil || json.Unmarshal(out, &kv) != nil {
		t.Fatalf("kubectl version: %v", err)
	}
	if minor, _ := strconv.Atoi(strings.TrimSuffix(kv.ClientVersion.Minor, "+")); minor < 22 {
		versions = []string{"v1beta1"}
	}
	t.Logf("kubectl 1.%s: exec %v", kv.ClientVersion.Minor, versions)
	f := newKubeFixture(t, keycloak.RealmTest, "kurt")
	home := t.TempDir()
	kubeconfig := filepath.Join(home, "kubeconfig")
	kubectlRun := func() (string, string, error) {
		cmd := exec.Command(kubectl, "--kubeconfig", kubeconfig, "get", "--raw", "/api/v1/whoami")
		cmd.Env = append(os.Environ(), "HOME="+home, "KUBECONFIG=")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		f.e.record(out.String())
		f.e.record(errb.String())
		return out.String(), errb.String(), err
	}
	for _, v := range versions {
		code, _, stderr := f.e.run("kubeconfig", "--profile", f.e.profile, "--cluster", "test", "--server", f.idAPI.URL,
			"--certificate-authority", f.ca.PEMPath, "--command", kcAgentCommand(t), "--exec-api-version", v,
			"--merge", "--use-context", "--kubeconfig", kubeconfig)
		if code != 0 {
			t.Fatalf("kubeconfig: %s", stderr)
		}
		stdout, stderr, err := kubectlRun()
		var who testenv.WhoAmI
		if err != nil || json.Unmarshal([]byte(stdout), &who) != nil || who.User != f.user {
			t.Fatalf("kubectl (exec %s): %v\n%s", v, err, stderr)
		}
	}
	if code, _, stderr := f.e.run("logout", "--profile", f.e.profile); code != 0 {
		t.Fatalf("logout: %s", stderr)
	}
	_, stderr, err := kubectlRun()
	if err == nil || !strings.Contains(stderr, "kc-agent: error: profile \""+f.e.profile+"\" is not logged in") ||
		!strings.Contains(stderr, "kc-agent: hint: run `kc-agent login --profile "+f.e.profile+"`") {
		t.Fatalf("kubectl after logout: %v\n%s", err, stderr)
	}
}

// `kc-agent token --type id` prints the ID token (aud kc-agent), which an
// API server for the access token's audience refuses; the socket API
// refuses a type it does not know.
func TestTokenTypeID(t *testing.T) {
	f := newKubeFixture(t, keycloak.RealmTest, "kurt")
	code, stdout, stderr := f.e.runHelper("", "token", "--profile", f.e.profile, "--type", "id", "--format", "header")
	header, ok := strings.CutPrefix(strings.TrimSuffix(stdout, "\n"), "Authorization: Bearer ")
	if code != 0 || !ok {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f.e.addSecret(header)
	code, stdout, _ = f.e.runHelper("", "token", "--profile", f.e.profile, "--type", "id")
	if code != 0 || strings.TrimSpace(stdout) != header {
		t.Fatalf("raw and header formats differ, or exit %d", code)
	}
	call := func(rs *testenv.ResourceServer) int {
		req, _ := http.NewRequest("GET", rs.URL+"/x", nil)
		req.Header.Set("Authorization", "Bearer "+header)
		resp, err := f.tlsClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if call(f.idAPI) != 200 || call(f.accAPI) != 401 {
		t.Fatal("token --type id did not print the ID token")
	}
	resp, err := f.agent.client.Token(context.Background(), ipc.TokenRequest{Profile: f.e.profile, Type: "refresh"})
	var ae *ipc.Error
	if !errors.As(err, &ae) || ae.Code != ipc.CodeBadRequest || resp != nil {
		t.Fatalf("type refresh: %v", err)
	}
}

func (f *kubeFixture) tlsClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(f.ca.Cert)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// --merge writes through a symlinked kubeconfig, and refuses files it
// would lose parts of (several documents, comments only).
func TestKubeconfigMergeSymlinkAndLossyFiles(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	real := filepath.Join(dir, "real.yaml")
	os.WriteFile(real, []byte("apiVersion: v1\nkind: Config\n# mine\nclusters: []\n"), 0o600)
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := e.run("kubeconfig", "--merge", "--kubeconfig", link); code != 0 {
		t.Fatalf("merge through a symlink: exit %d: %s", code, stderr)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the symlink was replaced by a file")
	}
	data, _ := os.ReadFile(real)
	if !strings.Contains(string(data), "kc-agent") || !strings.Contains(string(data), "# mine") {
		t.Fatalf("the linked file was not updated in place:\n%s", data)
	}
	for name, content := range map[string]string{
		"two documents": "apiVersion: v1\nkind: Config\n---\nusers: []\n",
		"comments only": "# just a comment\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
		os.WriteFile(p, []byte(content), 0o600)
		if code, _, stderr := e.run("kubeconfig", "--merge", "--kubeconfig", p); code == 0 || !strings.Contains(stderr, "not a kubeconfig") {
			t.Errorf("%s: exit %d: %s", name, code, stderr)
		}
		if got, _ := os.ReadFile(p); string(got) != content {
			t.Errorf("%s: the file was changed", name)
		}
	}
}
