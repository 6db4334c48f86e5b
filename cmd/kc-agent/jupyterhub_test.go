//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// TestJupyterHub is issue 25's shared host, end to end: a real JupyterHub
// (PyPI) with configurable-http-proxy (npm), PAM logins, LocalProcessSpawner
// spawning each user's server as that Linux user with no session bus, the
// admin's kc-agent on PATH, the kc-agent-client wheel in the hub's
// environment, and the README's system file passed through
// Spawner.environment. Everything the analysts do goes through the hub's
// REST API and kernel websockets.
func TestJupyterHub(t *testing.T) {
	e := newHubEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a, b := e.users[0], e.users[1]

	// "Copied as is, serves two users": the system file is the README's
	// example with the test's addresses (and the test's short idle time).
	t.Run("READMEExample/StoreFile", func(t *testing.T) {
		// No keychain here (no session bus): the example must keep tokens
		// in files by itself.
		if !storeFileRe.MatchString(readmeSystemFile(t)) {
			t.Fatalf("README.md's system file example does not say store: file:\n%s", readmeSystemFile(t))
		}
	})
	t.Run("READMEExample/ProxyListenAuto", func(t *testing.T) {
		// One file for every user: each proxy on an address of its own.
		if !listenAutoRe.MatchString(readmeSystemFile(t)) {
			t.Fatalf("README.md's system file example does not say proxy.listen: auto:\n%s", readmeSystemFile(t))
		}
	})
	t.Run("PAMLogin", func(t *testing.T) {
		for _, u := range e.users {
			if ok, err := e.hub.PAMLogin(ctx, u.Name, u.Password); err != nil || !ok {
				t.Fatalf("%s's PAM password at the hub's login form: accepted=%v, %v", u.Name, ok, err)
			}
		}
		if ok, err := e.hub.PAMLogin(ctx, a.Name, b.Password); err != nil || ok {
			t.Fatalf("another user's password was accepted (%v)", err)
		}
	})
	if !t.Run("SpawnServers", func(t *testing.T) { e.parallel(t, func(u *hubUser) error { return e.spawn(ctx, u) }) }) {
		return
	}
	t.Run("NoSessionBusInServers", func(t *testing.T) {
		for _, u := range e.users {
			out := e.py(t, ctx, u, `print(json.dumps({"bus": os.environ.get("DBUS_SESSION_BUS_ADDRESS"), "uid": os.getuid()}))`)
			if out["bus"] != nil || int(out["uid"].(float64)) != u.UID {
				t.Fatalf("%s's kernel: %v (want no session bus, uid %d)", u.Name, out, u.UID)
			}
		}
	})
	t.Run("LoginRequiredBeforeSignIn", func(t *testing.T) {
		for _, u := range e.users {
			out := e.py(t, ctx, u, `
try:
    kc.get_token()
    r = "token"
except Exception as e:
    r = type(e).__name__
print(json.dumps({"raised": r}))`)
			if out["raised"] != "LoginRequired" {
				t.Fatalf("%s's get_token() before any sign-in: %v, want LoginRequired", u.Name, out["raised"])
			}
		}
	})
	t.Run("StoreCheckedBeforeSignIn", func(t *testing.T) {
		e.storePreCheck(t, ctx, a)
	})
	if !t.Run("SignInFromNotebooks", func(t *testing.T) { e.parallel(t, func(u *hubUser) error { return e.signIn(ctx, u) }) }) {
		return
	}
	t.Run("ReadAsThemselves", func(t *testing.T) {
		for _, u := range e.users {
			e.checkReads(t, ctx, u)
		}
	})
	t.Run("Isolation", func(t *testing.T) {
		seen := len(e.rs.Seen())
		e.isolation(t, ctx, a, b)
		e.isolation(t, ctx, b, a)
		if n := len(e.rs.Seen()) - seen; n != 0 {
			t.Errorf("the API saw %d requests during the neighbours' attempts, want none", n)
		}
	})
	t.Run("AgentEnvironmentScrubbed", func(t *testing.T) {
		for _, u := range e.users {
			e.checkAgentEnv(t, u)
		}
	})
	t.Run("CulledAndRespawned", func(t *testing.T) {
		e.parallel(t, func(u *hubUser) error {
			if err := e.hub.StopServer(ctx, u.Name); err != nil {
				return err
			}
			return e.spawn(ctx, u)
		})
		for _, u := range e.users {
			e.checkReads(t, ctx, u)
		}
	})
	t.Run("RestartKeepsProxyAddress", func(t *testing.T) {
		for _, u := range e.users {
			before := e.routeURL(t, ctx, u)
			e.stopAgent(t, ctx, u)
			e.checkReads(t, ctx, u)
			if after := e.routeURL(t, ctx, u); after != before {
				t.Fatalf("%s's route moved from %s to %s across an agent restart", u.Name, before, after)
			}
		}
	})
	t.Run("KeptRouteURLReachesOnlyItsOwner", func(t *testing.T) { e.keptRouteURL(t, ctx, a, b) })
	t.Run("SquatterRefused", func(t *testing.T) { e.squatter(t, ctx, a, b) })
	t.Run("Session", func(t *testing.T) {
		for _, u := range e.users {
			out := e.py(t, ctx, u, `
with kc.session() as s:
    r = s.get(kc.route_url("warehouse") + "/whoami", timeout=30)
print(json.dumps({"status": r.status_code, "user": r.json().get("user")}))`)
			if out["status"] != 200.0 || out["user"] != u.kcUser {
				t.Fatalf("%s through kc_agent_client.session(): %v, want 200 as %s", u.Name, out, u.kcUser)
			}
		}
	})
	t.Run("IdleExit", func(t *testing.T) {
		e.idleExit(t, ctx)
	})
	t.Run("DoctorStartsNoBus", func(t *testing.T) {
		for _, u := range e.users {
			e.py(t, ctx, u, `r = subprocess.run(["kc-agent", "doctor"], capture_output=True, text=True, timeout=120)
print(json.dumps({"rc": r.returncode}))`)
		}
		time.Sleep(time.Second)
		e.procs.sample()
		e.procs.mu.Lock()
		defer e.procs.mu.Unlock()
		if len(e.procs.daemons) > 0 {
			t.Fatalf("kc-agent doctor started session bus or keyring daemons: %v", e.procs.daemons)
		}
	})
	t.Run("NoSessionBusDaemons", func(t *testing.T) {
		e.procs.sample()
		e.procs.mu.Lock()
		defer e.procs.mu.Unlock()
		if len(e.procs.daemons) > 0 {
			t.Fatalf("session bus or keyring daemons ran as the hub's users: %v", e.procs.daemons)
		}
	})
	t.Run("OneAgentPerUser", func(t *testing.T) {
		e.procs.sample()
		e.procs.mu.Lock()
		defer e.procs.mu.Unlock()
		for _, u := range e.users {
			if n := e.procs.maxAgents[u.UID]; n != 1 {
				t.Errorf("%s had at most %d agents at once, want 1", u.Name, n)
			}
		}
	})
}

// parallel runs f for each user at once (the two analysts work side by
// side) and fails t with every error.
func (e *hubEnv) parallel(t *testing.T, f func(u *hubUser) error) {
	t.Helper()
	errs := make([]error, len(e.users))
	var wg sync.WaitGroup
	for i, u := range e.users {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(u) }()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", e.users[i].Name, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// prelude is what every kernel runs first: the client, requests, and
// the test API's address.
const prelude = `import json, os, socket, subprocess, sys, requests
import kc_agent_client as kc
from kc_agent_client import KcAgentAuth
API = %s
def whoami(url, **kw):
    try:
        r = requests.get(url + "/whoami", timeout=30, **kw)
    except Exception as e:
        return {"error": type(e).__name__, "detail": str(e)[:300]}
    try:
        user = r.json().get("user")
    except ValueError:
        user = None
    return {"status": r.status_code, "user": user, "body": r.text[:300]}
`

// spawn starts the user's server through the REST API and a kernel in it.
func (e *hubEnv) spawn(ctx context.Context, u *hubUser) error {
	if u.kernel != nil {
		u.kernel.Close()
		u.kernel = nil
	}
	if err := e.hub.StartServer(ctx, u.Name); err != nil {
		return err
	}
	k, err := e.hub.StartKernel(ctx, u.Name)
	if err != nil {
		return err
	}
	u.kernel = k
	if _, err := k.Execute(ctx, fmt.Sprintf(prelude, pyStr(e.api)), nil); err != nil {
		return fmt.Errorf("the prelude in %s's kernel: %w", u.Name, err)
	}
	return nil
}

// py runs code in u's kernel; its last printed line is a JSON object.
func (e *hubEnv) py(t *testing.T, ctx context.Context, u *hubUser, code string) map[string]any {
	t.Helper()
	out, err := u.kernel.Execute(ctx, code, nil)
	if err != nil {
		t.Fatalf("%s's kernel: %v", u.Name, err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("%s's kernel printed %q, not a JSON line", u.Name, out)
	}
	return m
}

// signInLinkRe finds the link in login()'s block while it waits: the first
// one in the pending block, as a person clicks it.
var signInLinkRe = regexp.MustCompile(`(?s)class="kc-agent-login kc-agent-pending".*?<a href="([^"]+)"`)

// signIn runs login() in u's notebook; the test's browser approves the
// device code it shows as u's Keycloak user.
func (e *hubEnv) signIn(ctx context.Context, u *hubUser) error {
	approved := make(chan error, 1)
	var once sync.Once
	shown := false
	onHTML := func(h string) {
		m := signInLinkRe.FindStringSubmatch(h)
		if m == nil {
			return
		}
		once.Do(func() {
			shown = true
			link := html.UnescapeString(m[1])
			go func() {
				res, err := keycloak.NewFormBrowser(u.kcUser, u.kcPassword).Visit(ctx, link)
				if err == nil && !strings.Contains(res.URL, "/device/status") {
					err = fmt.Errorf("the browser ended at %s (HTTP %d), not the device status page", res.URL, res.Status)
				}
				approved <- err
			}()
		})
	}
	out, err := u.kernel.Execute(ctx, "kc.login()", onHTML)
	if err != nil {
		return fmt.Errorf("login(): %w", err)
	}
	if !shown {
		return fmt.Errorf("login() returned without showing a sign-in link (output %q)", out)
	}
	// The agent may see the approval before the browser has loaded the
	// page after it.
	if err := <-approved; err != nil {
		return fmt.Errorf("approving the device code as %s: %w", u.kcUser, err)
	}
	if !strings.Contains(out, "signed in as "+u.kcUser) {
		return fmt.Errorf("login() said %q, not that %s signed in", out, u.kcUser)
	}
	return nil
}

// checkReads: u reads through the route and through KcAgentAuth, and the
// API (which asks Keycloak) sees u's Keycloak user.
func (e *hubEnv) checkReads(t *testing.T, ctx context.Context, u *hubUser) {
	t.Helper()
	out := e.py(t, ctx, u, `print(json.dumps({"route": whoami(kc.route_url("warehouse")), "auth": whoami(API, auth=KcAgentAuth())}))`)
	for _, via := range []string{"route", "auth"} {
		r, _ := out[via].(map[string]any)
		if r["status"] != 200.0 || r["user"] != u.kcUser {
			t.Fatalf("%s reading through the %s: %v, want HTTP 200 as %s", u.Name, via, r, u.kcUser)
		}
	}
}

// routeURL is u's route_url("warehouse").
func (e *hubEnv) routeURL(t *testing.T, ctx context.Context, u *hubUser) string {
	t.Helper()
	out := e.py(t, ctx, u, `print(json.dumps({"url": kc.route_url("warehouse")}))`)
	s, _ := out["url"].(string)
	if s == "" {
		t.Fatalf("%s: no route URL: %v", u.Name, out)
	}
	return s
}

// stopAgent stops u's agent: `kc-agent stop` from u's notebook once
// "lifecycle" has landed, else SIGTERM from root (as a reboot would).
func (e *hubEnv) stopAgent(t *testing.T, ctx context.Context, u *hubUser) {
	t.Helper()
	pid := e.agentPID(u)
	if pid == 0 {
		t.Fatalf("%s has no agent to stop", u.Name)
	}
	out := e.py(t, ctx, u, `r = subprocess.run(["kc-agent", "stop"], capture_output=True, text=True, timeout=60)
print(json.dumps({"rc": r.returncode, "stderr": r.stderr[-300:]}))`)
	if out["rc"] != 0.0 {
		t.Fatalf("%s: kc-agent stop: %v", u.Name, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.agentPID(u) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s's agent (pid %d) still runs 30 s after it was stopped", u.Name, pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkAgentEnv: the autostarted agent did not keep the spawner's secrets.
func (e *hubEnv) checkAgentEnv(t *testing.T, u *hubUser) {
	t.Helper()
	pid := e.agentPID(u)
	if pid == 0 {
		t.Fatalf("%s has no agent", u.Name)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(string(data), "\x00") {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "JUPYTERHUB_") || strings.HasPrefix(name, "JPY_") {
			t.Errorf("%s's agent carries the spawner's %s", u.Name, name)
		}
	}
}

// keptRouteURL: a route URL kept in a notebook variable across agent
// restarts reaches only its owner. Both agents stop; the neighbour's starts
// first (with 127.0.0.1:0 it took the freed port, issue 25 item 3); then the
// owner's variable still reaches the owner's agent and no one else's.
func (e *hubEnv) keptRouteURL(t *testing.T, ctx context.Context, owner, other *hubUser) {
	e.py(t, ctx, owner, `kept = kc.route_url("warehouse")
print(json.dumps({"kept": kept}))`)
	kept := e.routeURL(t, ctx, owner)
	e.stopAgent(t, ctx, owner)
	e.stopAgent(t, ctx, other)
	e.checkReads(t, ctx, other)
	u, _ := url.Parse(kept)
	if l := listenerUID(u.Host); l == other.UID {
		t.Fatalf("%s's agent now listens on %s, the address in %s's variable", other.Name, u.Host, owner.Name)
	}
	if out := e.py(t, ctx, other, fmt.Sprintf(`print(json.dumps(whoami(%s)))`, pyStr(kept))); out["error"] != "ConnectionError" {
		t.Fatalf("%s sent to %s's kept route URL while %s's agent was stopped: %v, want a refused connection", other.Name, owner.Name, owner.Name, out)
	}
	out := e.py(t, ctx, owner, `kc.get_token()
print(json.dumps(whoami(kept)))`)
	if out["status"] != 200.0 || out["user"] != owner.kcUser {
		t.Fatalf("%s's kept route URL after the restarts: %v, want HTTP 200 as %s", owner.Name, out, owner.kcUser)
	}
}

// idleExit: with the system file's short idle time, an agent nobody uses
// ends, and the next get_token() brings it back without a sign-in.
func (e *hubEnv) idleExit(t *testing.T, ctx context.Context) {
	for _, u := range e.users {
		if e.agentPID(u) == 0 {
			e.py(t, ctx, u, `kc.get_token(); print("{}")`)
		}
	}
	deadline := time.Now().Add(idleTime + 30*time.Second)
	for _, u := range e.users {
		for e.agentPID(u) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s's agent still runs %s after its last client (idle time %s)", u.Name, idleTime+30*time.Second, idleTime)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	for _, u := range e.users {
		e.checkReads(t, ctx, u)
		if e.agentPID(u) == 0 {
			t.Fatalf("%s read without an agent?", u.Name)
		}
	}
}

// idleTime is the system file's idle time for this test.
const idleTime = 15 * time.Second

// tokenFile is where the file store keeps u's offline token.
func tokenFile(u *hubUser) string {
	return filepath.Join(u.Home, ".local", "state", "kc-agent", "tokens", "default.json")
}
