//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/dpopapi"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// dpopAPIs is an agent with two logins to one realm copy, a bound one
// (dpop: on, e.profile) and an unbound one (dpop: off, off), and routes
// to a DPoP-verifying API (route "dpop", bound profile) and a Bearer-only
// one (route "bearer", unbound profile).
type dpopAPIs struct {
	e            *cliEnv
	off          string
	api, bearer  *dpopapi.Server
	apiURL, bURL string
	proxy        string // the proxy's address
	issuer       string
	agent        *agentProc
}

func newDPoPAPIs(t *testing.T) *dpopAPIs {
	t.Helper()
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := dpopRealm(t, kc, keycloak.RealmTest, false)
	f := &dpopAPIs{e: e, off: e.profile + "-off", issuer: kc.Issuer(realm)}
	e.writeProfile(config.Profile{Issuer: f.issuer, DPoP: config.DPoPOn})
	e.login(realm, "alice", "alice-pw")
	e.loginOther(f.off, config.Profile{Issuer: f.issuer, DPoP: config.DPoPOff}, "carol", "carol-pw")
	opts := dpopapi.Options{Issuer: f.issuer, ClientID: "warehouse-api", ClientSecret: "unused-test-secret"}
	f.api, f.apiURL = dpopapi.Start(t, opts)
	opts.Mode = dpopapi.ModeBearer
	f.bearer, f.bURL = dpopapi.Start(t, opts)
	f.proxy = freeAddr(t)
	e.appendConfig(fmt.Sprintf("routes:\n  - name: dpop\n    upstream: %s/v1\n    profile: %s\n  - name: bearer\n    upstream: %s/v1\n    profile: %s\n"+
		"  - name: git\n    upstream: https://git.example.test/team\n    profile: %s\nproxy:\n  listen: %s\n",
		f.apiURL, e.profile, f.bURL, f.off, e.profile, f.proxy))
	f.agent = e.startAgent()
	return f
}

// loginOther adds profile name (p) to the config and logs it in as user;
// its keychain item is deleted at the end.
func (e *cliEnv) loginOther(name string, p config.Profile, user, password string) {
	e.t.Helper()
	path, _ := config.FilePath()
	cfg, err := config.Load(path)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cfg.SetProfile(name, p); err != nil {
		e.t.Fatal(err)
	}
	if err := cfg.Save(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if st, err := store.ForProfile(p, nil); err == nil {
			st.Delete(context.Background(), name)
		}
	})
	wait := browse(keycloak.NewFormBrowser(user, password))
	if code, _, stderr := e.run("login", "--profile", name, "--timeout", "60s"); code != 0 {
		e.t.Fatalf("login of profile %s: exit %d: %s", name, code, stderr)
	}
	if err := wait(); err != nil {
		e.t.Fatal(err)
	}
}

// appendConfig adds YAML to the config file.
func (e *cliEnv) appendConfig(yaml string) {
	e.t.Helper()
	path, _ := config.FilePath()
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(data, []byte(yaml)...), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// through sends a request through the proxy's route and returns the
// status and body.
func (f *dpopAPIs) through(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+f.proxy+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	f.e.record(string(data))
	return resp.StatusCode, string(data)
}

// Issue 29, APIs under dpop: on: through a route the DPoP-verifying API
// accepts GETs and POSTs with a body, after one nonce challenge for the
// login's key; the route to a Bearer-only API keeps working with the
// unbound profile; the API refused nothing of what the route sent.
func TestDPoPRoutes(t *testing.T) {
	f := newDPoPAPIs(t)
	if code, body := f.through(t, "GET", "/dpop/items?q=1", ""); code != 200 || !strings.Contains(body, `"user":"alice"`) || !strings.Contains(body, `"scheme":"DPoP"`) {
		t.Fatalf("GET through the route: HTTP %d %s", code, body)
	}
	if code, body := f.through(t, "POST", "/dpop/items", `{"n":1}`); code != 200 || !strings.Contains(body, `"body_bytes":7`) {
		t.Fatalf("POST through the route: HTTP %d %s", code, body)
	}
	if got := f.api.Last(); got.Method != "POST" || string(got.Body) != `{"n":1}` || got.Path != "/v1/items" {
		t.Fatalf("the API saw %+v", got)
	}
	for range 5 {
		if code, body := f.through(t, "GET", "/dpop/items", ""); code != 200 {
			t.Fatalf("GET: HTTP %d %s", code, body)
		}
	}
	st := f.api.Stats()
	if st.Accepted != 7 || st.Challenges != 1 || len(st.Refused) != 0 {
		t.Fatalf("the API accepted %d, challenged %d, refused %v; want 7, 1 (one per key), none", st.Accepted, st.Challenges, st.Refused)
	}
	if code, body := f.through(t, "GET", "/bearer/items", ""); code != 200 || !strings.Contains(body, `"user":"carol"`) || !strings.Contains(body, `"scheme":"Bearer"`) {
		t.Fatalf("the Bearer API through the unbound profile's route: HTTP %d %s", code, body)
	}
}

// The socket endpoint's proofs, as `kc-agent token --format dpop` prints
// them into real curl: the API's nonce challenge, then accepted; the same
// proof sent twice is refused by the API (jti replay). `token` in its
// other formats refuses the bound token, and so do kube-credential (for
// the access token) and git-credential.
func TestDPoPTokenCommand(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	f := newDPoPAPIs(t)
	e := f.e
	target := f.apiURL + "/v1/items?q=2"
	headers := func(extra ...string) string {
		t.Helper()
		code, stdout, stderr := e.run(append([]string{"token", "--profile", e.profile, "--format", "dpop", "--url", target, "--method", "POST"}, extra...)...)
		if code != 0 || !strings.HasPrefix(stdout, "Authorization: DPoP ") || !strings.Contains(stdout, "\nDPoP: ") {
			t.Fatalf("token --format dpop: exit %d: %s", code, stderr)
		}
		at, _, _ := strings.Cut(strings.TrimPrefix(stdout, "Authorization: DPoP "), "\n")
		e.addSecret(at)
		return stdout
	}
	post := func(h string) (code, nonce string) {
		t.Helper()
		c := exec.Command(curl, "-s", "-o", "/dev/null", "-D", "-", "-w", "%{http_code}", "-X", "POST", "--data", "x=1", "-H", "@-", target)
		c.Stdin = strings.NewReader(h)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		s := string(out)
		for _, line := range strings.Split(s, "\r\n") {
			if v, ok := strings.CutPrefix(strings.ToLower(line), "dpop-nonce: "); ok {
				nonce = line[len(line)-len(v):]
			}
		}
		return s[len(s)-3:], nonce
	}
	code, nonce := post(headers())
	if code != "401" || nonce == "" {
		t.Fatalf("the first proof: HTTP %s, nonce %t; want the API's challenge", code, nonce != "")
	}
	h := headers("--nonce", nonce)
	if code, _ := post(h); code != "200" {
		t.Fatalf("with the nonce: HTTP %s (refusals %v)", code, f.api.Stats().Refused)
	}
	if code, _ := post(h); code != "401" || f.api.Stats().Refused["jti_replay"] != 1 {
		t.Fatalf("the same proof again: HTTP %s, refusals %v; want 401 jti_replay", code, f.api.Stats().Refused)
	}

	for _, format := range []string{"raw", "json", "header", "env"} {
		code, stdout, stderr := e.run("token", "--profile", e.profile, "--format", format)
		if code != exitError || stdout != "" || !strings.Contains(stderr, "DPoP-bound") || !strings.Contains(stderr, "--format dpop --url URL") {
			t.Fatalf("token --format %s of a bound token: exit %d, stdout %d bytes:\n%s", format, code, len(stdout), stderr)
		}
	}
	// The unbound profile's token prints as before, and as a Bearer
	// header line with --format dpop.
	if code, stdout, stderr := e.run("token", "--profile", f.off, "--format", "dpop", "--url", f.bURL+"/v1/x"); code != 0 || !strings.HasPrefix(stdout, "Authorization: Bearer ") || strings.Contains(stdout, "DPoP:") {
		t.Fatalf("token --format dpop of an unbound login: exit %d: %s", code, stderr)
	}
	// No proof for Keycloak's own token endpoint, however spelled: it reads
	// no ath there, so with a copy of the offline token such a proof would
	// refresh it anywhere.
	for _, u := range []string{f.issuer + "/protocol/openid-connect/token", strings.ToUpper(f.issuer[:8]) + f.issuer[8:] + "/protocol/./openid-connect/%74oken"} {
		code, stdout, stderr := e.run("token", "--profile", e.profile, "--format", "dpop", "--url", u, "--method", "POST")
		if code != exitError || stdout != "" || !strings.Contains(stderr, "signs no DPoP proof") || !strings.Contains(stderr, "hint:") {
			t.Fatalf("token --format dpop --url %s: exit %d, stdout %d bytes:\n%s", u, code, len(stdout), stderr)
		}
	}
	code2, _, stderr := e.run("kube-credential", "--profile", e.profile, "--token-type", "access")
	if code2 != exitError || !strings.Contains(stderr, "DPoP-bound") || !strings.Contains(stderr, "--token-type id") {
		t.Fatalf("kube-credential with a bound access token: exit %d:\n%s", code2, stderr)
	}
	code2, stdout, stderr := e.runHelper("protocol=https\nhost=git.example.test\npath=team/repo.git\n\n", "git-credential", "get")
	if code2 != exitError || stdout != "" || !strings.Contains(stderr, "git can not send the proof") || !strings.Contains(stderr, "route") {
		t.Fatalf("git-credential with a bound token: exit %d, stdout %d bytes:\n%s", code2, len(stdout), stderr)
	}
}

// boundToken asks for the profile's bound token the way a caller can use
// it (with a proof) and returns the exit code and stderr.
func (e *cliEnv) boundToken(args ...string) (int, string) {
	e.t.Helper()
	code, _, stderr := e.run(append([]string{"token", "--profile", e.profile, "--format", "dpop", "--url", "https://api.example/"}, args...)...)
	return code, stderr
}
