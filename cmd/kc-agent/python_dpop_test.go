//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/dpopapi"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// Issue 29's DPoP-only API from Python, against the real agent and
// Keycloak: with a `dpop: on` login, KcAgentAuth (requests, httpx sync
// and async) and a notebook executed by `jupyter nbconvert --execute`
// reach an API that checks every proof (internal/testenv/dpopapi: the
// signature, htm, htu, iat, jti replay, ath, the token's cnf.jkt at
// Keycloak) and answers one nonce challenge per process that has not yet
// seen its nonce. The key stays in the agent: the kernel asks it for a
// proof per request. get_token() refuses the bound token; a bound login
// whose key went missing is LoginRequired. Nothing printed holds a token
// or a proof.
func TestPythonDPoP(t *testing.T) {
	testenv.SecretService(t)
	requirePythonTools(t)
	root := repoRoot(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := dpopRealm(t, kc, keycloak.RealmTest, false)
	issuer := kc.Issuer(realm)
	e.writeProfile(config.Profile{Issuer: issuer, DPoP: config.DPoPOn})
	e.login(realm, "alice", "alice-pw")
	e.checkBound()
	agent := e.startAgent()
	api, base := dpopapi.Start(t, dpopapi.Options{Issuer: issuer, ClientID: "warehouse-api", ClientSecret: "unused-test-secret"})

	src := filepath.Join(root, "clients", "python", "src")
	env := []string{"PYTHONPATH=" + src, "KC_AGENT_SOCK=" + os.Getenv("KC_AGENT_SOCK"), "KC_AGENT_PROFILE=" + e.profile, "DPOP_API=" + base}
	out := e.python(root, env, filepath.Join("clients", "python", "tests", "integration", "dpop_e2e.py"))
	// 6 with requests, 3 httpx, 4 httpx async: all accepted; the first
	// met the challenge, the rest sent the kept nonce at once.
	lines := strings.Split(out, "\n")
	if n := countPrefix(lines, "requests ", " 200 alice DPoP history "); n != 6 {
		t.Errorf("requests: %d of 6 accepted:\n%s", n, out)
	}
	if n := countPrefix(lines, "httpx ", " 200 alice DPoP history []"); n != 3 {
		t.Errorf("httpx: %d of 3 accepted at once:\n%s", n, out)
	}
	if n := countPrefix(lines, "httpx-async ", " 200 alice DPoP history []"); n != 4 {
		t.Errorf("httpx async: %d of 4 accepted at once:\n%s", n, out)
	}
	for _, want := range []string{"requests GET 200 alice DPoP history [401]", "get_token refused: dpop_bound", "token_type='DPoP'", "access_token=<hidden>", "\ndone"} {
		if !strings.Contains(out, want) {
			t.Errorf("the script's output lacks %q:\n%s", want, out)
		}
	}
	st := api.Stats()
	if st.Accepted != 13 || st.Challenges != 1 || len(st.Refused) != 0 {
		t.Errorf("the API accepted %d (want 13), challenged %d (want 1), refused %v (want none)", st.Accepted, st.Challenges, st.Refused)
	}

	t.Logf("script: the API accepted %d requests, challenged %d", st.Accepted, st.Challenges)

	py := pythonInterp{name: "debian", python: debianPython, env: []string{"PYTHONPATH=" + src}}
	run := runNotebook(t, e, py, "dpop.ipynb", env[1:], false)
	nb := run.text() + results(run)
	for _, want := range []string{"first 200 alice DPoP history [401]", "second 200 POST history []", "httpx 200 /v1/from-httpx history []",
		"get_token refused: dpop_bound", "TokenInfo(profile=", "access_token=<hidden>"} {
		if !strings.Contains(nb, want) {
			t.Errorf("the notebook's output lacks %q:\n%s", want, nb)
		}
	}
	if st := api.Stats(); st.Accepted != 16 || st.Challenges != 2 || len(st.Refused) != 0 {
		t.Errorf("after the notebook the API accepted %d (want 16), challenged %d (want 2), refused %v", st.Accepted, st.Challenges, st.Refused)
	}

	// The login's key goes missing (a restore without it): a restarted
	// agent can neither refresh nor sign, and Python gets LoginRequired.
	agent.stop()
	p, _ := e.loadProfile()
	ks, _ := store.KeysForProfile(p)
	if err := ks.Delete(context.Background(), e.profile); err != nil {
		t.Fatal(err)
	}
	e.startAgent()
	out = e.python(root, env, "-c", `import os, kc_agent_client as kc
try:
    kc.session().get(os.environ["DPOP_API"] + "/v1/x")
except kc.LoginRequired as e:
    print("caught LoginRequired:", e)`)
	if !strings.Contains(out, "caught LoginRequired: ") || !strings.Contains(out, "bound to a DPoP key that is missing") {
		t.Errorf("a bound login without its key, from Python:\n%s", out)
	}
}

// python runs Debian's python3 with args in dir and env (and nothing of
// the test's own environment but PATH and HOME), records its output for
// the token leak check and returns it; a failure ends the test.
func (e *cliEnv) python(dir string, env []string, args ...string) string {
	e.t.Helper()
	cmd := exec.Command(debianPython, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + filepath.Join(e.dir, "pyhome"), "LANG=C.UTF-8"}, env...)
	out, err := cmd.CombinedOutput()
	e.record(string(out))
	if err != nil {
		e.t.Fatalf("python %s: %v\n%s", args[0], err, out)
	}
	return string(out)
}

// results is what the notebook's Out[] cells show (their text/plain).
func results(n *notebookRun) string {
	var b strings.Builder
	for _, c := range n.Cells {
		for _, o := range c.Outputs {
			if o.OutputType != "execute_result" {
				continue
			}
			switch v := o.Data["text/plain"].(type) {
			case string: // nbformat writes a string or a list of lines
				b.WriteString(v + "\n")
			case []any:
				for _, l := range v {
					s, _ := l.(string)
					b.WriteString(s)
				}
				b.WriteString("\n")
			}
		}
	}
	return b.String()
}

// countPrefix counts the lines that start with prefix and contain want.
func countPrefix(lines []string, prefix, want string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, want) {
			n++
		}
	}
	return n
}
