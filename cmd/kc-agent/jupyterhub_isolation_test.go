//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// isolation: from her own notebook, the neighbour tries every way at the
// victim's token named in issue 25 and gets none: the victim's socket, the
// victim's proxy (its route URL, and as HTTP_PROXY/HTTPS_PROXY), the
// victim's files and the victim's processes in /proc.
func (e *hubEnv) isolation(t *testing.T, ctx context.Context, neighbour, victim *hubUser) {
	t.Helper()
	v := e.py(t, ctx, victim, `print(json.dumps({"sock": kc.agent_socket(), "route": kc.route_url("warehouse")}))`)
	sock, _ := v["sock"].(string)
	route, _ := v["route"].(string)
	pid := e.agentPID(victim)
	if sock == "" || route == "" || pid == 0 {
		t.Fatalf("%s: socket %q, route %q, agent pid %d", victim.Name, sock, route, pid)
	}
	ru, _ := url.Parse(route)
	proxy := "http://" + ru.Host
	tf := tokenFile(victim)
	if st, err := os.Stat(tf); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%s's token file %s: %v", victim.Name, tf, err)
	}
	who := fmt.Sprintf("%s against %s", neighbour.Name, victim.Name)

	t.Run("Socket", func(t *testing.T) {
		out := e.py(t, ctx, neighbour, fmt.Sprintf(`sock = %s
r = subprocess.run(["kc-agent", "token", "--format", "json"], capture_output=True, text=True, timeout=60,
    env=dict(os.environ, KC_AGENT_SOCK=sock, KC_AGENT_NO_AUTOSTART="1"))
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sock)
    conn = "connected"
except OSError as e:
    conn = type(e).__name__
os.environ["KC_AGENT_SOCK"] = sock
try:
    kc.get_token()
    client = "token"
except Exception as e:
    client = type(e).__name__
del os.environ["KC_AGENT_SOCK"]
print(json.dumps({"rc": r.returncode, "jwt": "eyJ" in r.stdout + r.stderr, "stderr": r.stderr[-300:], "conn": conn, "client": client}))`, pyStr(sock)))
		if out["rc"] != 3.0 || out["jwt"] != false || out["conn"] != "PermissionError" || out["client"] != "UntrustedAgent" {
			t.Fatalf("%s's socket %s: %v (want kc-agent token exit 3, connect PermissionError, get_token UntrustedAgent)", who, sock, out)
		}
	})
	t.Run("Proxy", func(t *testing.T) {
		out := e.py(t, ctx, neighbour, fmt.Sprintf(`print(json.dumps(whoami(%s)))`, pyStr(route)))
		if !closedByAgent(out, "ConnectionError") {
			t.Fatalf("%s's route URL: %v, want the connection closed by the agent's caller check", who, out)
		}
	})
	t.Run("ProxyEnv", func(t *testing.T) {
		// HTTP(S)_PROXY as a program reads it: a fresh interpreter that
		// trusts the environment.
		out := e.py(t, ctx, neighbour, fmt.Sprintf(`prog = """
import json, requests
out = {}
for name, url in (("http", %s.replace("https://", "http://") + "/whoami"), ("https", %s + "/whoami")):
    try:
        r = requests.get(url, timeout=30)
        out[name] = {"status": r.status_code, "body": r.text[:300]}
    except Exception as e:
        out[name] = {"error": type(e).__name__, "detail": str(e)[:300]}
print(json.dumps(out))
"""
r = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, timeout=90,
    env=dict(os.environ, HTTP_PROXY=%s, HTTPS_PROXY=%s, NO_PROXY=""))
print(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else json.dumps({"stderr": r.stderr[-500:]}))`,
			pyStr(e.api), pyStr(e.api), pyStr(proxy), pyStr(proxy)))
		http, _ := out["http"].(map[string]any)
		https, _ := out["https"].(map[string]any)
		if !closedByAgent(http, "ProxyError") {
			t.Errorf("%s's proxy as HTTP_PROXY: %v, want the connection closed by the agent's caller check", who, http)
		}
		if !closedByAgent(https, "ConnectionError") {
			t.Errorf("%s's proxy as HTTPS_PROXY: %v, want the connection closed by the agent's caller check", who, https)
		}
		log, _ := os.ReadFile(filepath.Join(victim.Home, ".local", "state", "kc-agent", "agent.log"))
		if !strings.Contains(string(log), "proxy refused a connection from another user") {
			t.Errorf("%s's agent log does not show the refusals", victim.Name)
		}
	})
	t.Run("Files", func(t *testing.T) {
		out := e.py(t, ctx, neighbour, fmt.Sprintf(`res = {}
for name, f in (("token", lambda: open(%s).read()), ("state", lambda: os.listdir(%s))):
    try:
        f()
        res[name] = "read"
    except OSError as e:
        res[name] = type(e).__name__
print(json.dumps(res))`, pyStr(tf), pyStr(filepath.Dir(filepath.Dir(tf)))))
		if out["token"] != "PermissionError" || out["state"] != "PermissionError" {
			t.Fatalf("%s's token file and state directory: %v, want PermissionError for both", who, out)
		}
	})
	t.Run("Proc", func(t *testing.T) {
		out := e.py(t, ctx, neighbour, fmt.Sprintf(`import re
res, jwt = {}, re.compile(rb"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.")
for name in ("environ", "mem", "fd/0", "cmdline"):
    try:
        data = open("/proc/%%d/%%s" %% (%d, name), "rb").read(1 << 20)
        res[name] = "jwt" if jwt.search(data) else "read"
    except OSError as e:
        res[name] = type(e).__name__
found = []
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        if os.stat("/proc/" + pid).st_uid != %d:
            continue
    except OSError:
        continue
    for name in ("cmdline", "environ"):
        try:
            if jwt.search(open("/proc/%%s/%%s" %% (pid, name), "rb").read()):
                found.append(pid + "/" + name)
        except OSError:
            pass
res["scan"] = found
print(json.dumps(res))`, pid, victim.UID))
		want := map[string]any{"environ": "PermissionError", "mem": "PermissionError", "fd/0": "PermissionError", "cmdline": "read"}
		for k, w := range want {
			if out[k] != w {
				t.Errorf("%s: /proc/%d/%s of the agent: %v, want %v", who, pid, k, out[k], w)
			}
		}
		if found, _ := out["scan"].([]any); len(found) > 0 {
			t.Errorf("%s: a token in /proc/%v", who, found)
		}
	})
}

// closedByAgent: requests saw the connection accepted and then closed (what
// the agent's proxy does to another user's connection), not refused by an
// empty port.
func closedByAgent(r map[string]any, wantErr string) bool {
	detail, _ := r["detail"].(string)
	return r["error"] == wantErr && !strings.Contains(detail, "Connection refused") &&
		(strings.Contains(detail, "reset by peer") || strings.Contains(detail, "RemoteDisconnected"))
}

// squatter: while the owner's agent is stopped, the neighbour takes the
// owner's proxy address (any user may listen on loopback) and waits for
// what the owner's clients send there. KcAgentAuth checks the listener
// before it sends; session() ("connections") checks each new connection.
// Nothing of the owner's reaches the squatter.
func (e *hubEnv) squatter(t *testing.T, ctx context.Context, owner, neighbour *hubUser) {
	kept := e.routeURL(t, ctx, owner)
	ku, _ := url.Parse(kept)
	e.stopAgent(t, ctx, owner)
	e.py(t, ctx, neighbour, fmt.Sprintf(`import threading
host, port = %s.rsplit(":", 1)
sq = socket.socket()
sq.bind((host, int(port)))
sq.listen(8)
got = []
def serve():
    while True:
        try:
            c, _ = sq.accept()
        except OSError:
            return
        c.settimeout(3)
        try:
            got.append(len(c.recv(65536)))
        except OSError:
            got.append(0)
        c.close()
threading.Thread(target=serve, daemon=True).start()
print("{}")`, pyStr(ku.Host)))
	if l := listenerUID(ku.Host); l != neighbour.UID {
		t.Fatalf("the squatter does not hold %s (uid %d listens)", ku.Host, l)
	}
	// The owner's agent starts while its address is taken.
	e.py(t, ctx, owner, `kc.get_token(); print("{}")`)
	pid := e.agentPID(owner)
	t.Run("KcAgentAuth", func(t *testing.T) {
		out := e.py(t, ctx, owner, fmt.Sprintf(`try:
    requests.post(%s + "/whoami", data="the owner's request body", auth=KcAgentAuth(), timeout=10)
    r, m = "sent", ""
except Exception as e:
    r, m = type(e).__name__, str(e)
print(json.dumps({"raised": r, "message": m[:300]}))`, pyStr(kept)))
		// Refused before a byte goes out: the listener is someone else's
		// (UntrustedAgent), or, with "connections", plain requests never
		// send a token in the clear to loopback (use session()).
		msg, _ := out["message"].(string)
		if (out["raised"] != "UntrustedAgent" && out["raised"] != "KcAgentError") || !strings.Contains(msg, "refusing to send a token in the clear") {
			t.Fatalf("KcAgentAuth to the squatted %s: %v, want a refusal to send the token", ku.Host, out)
		}
	})
	t.Run("Session", func(t *testing.T) {
		out := e.py(t, ctx, owner, fmt.Sprintf(`try:
    with kc.session() as s:
        s.post(%s + "/whoami", data="the owner's request body", timeout=10)
    r = "sent"
except Exception as e:
    r = type(e).__name__
print(json.dumps({"raised": r}))`, pyStr(kept)))
		if out["raised"] != "UntrustedAgent" {
			t.Fatalf("kc_agent_client.session() to the squatted %s: %v, want UntrustedAgent", ku.Host, out)
		}
	})
	// shutdown first: close alone leaves the socket listening while the
	// thread waits in accept.
	out := e.py(t, ctx, neighbour, `sq.shutdown(socket.SHUT_RDWR)
sq.close()
print(json.dumps({"got": got}))`)
	if l := listenerUID(ku.Host); l == neighbour.UID {
		t.Fatalf("the squatter still listens on %s", ku.Host)
	}
	if !allZero(out["got"]) {
		t.Errorf("the squatter received bytes from %s's clients: %v", owner.Name, out["got"])
	}
	t.Run("ProxyRetried", func(t *testing.T) {
		// The squatter left: the owner's agent takes its address back by
		// itself (a notebook user can't restart it).
		deadline := time.Now().Add(45 * time.Second)
		for {
			out := e.py(t, ctx, owner, fmt.Sprintf(`print(json.dumps(whoami(%s)))`, pyStr(kept)))
			if out["status"] == 200.0 && out["user"] == owner.kcUser {
				if now := e.agentPID(owner); now != pid {
					t.Fatalf("%s's agent was restarted (pid %d, then %d): the retry should have done it", owner.Name, pid, now)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s's agent did not take its address back within 45 s of the squatter leaving: %v", owner.Name, out)
			}
			time.Sleep(time.Second)
		}
	})
}

func allZero(v any) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if x != 0.0 {
			return false
		}
	}
	return true
}

// storePreCheck ("session"): a profile whose store can not write here (the
// keychain, with no session bus) fails login() at once, saying whose fix it
// is, before any device code is shown.
func (e *hubEnv) storePreCheck(t *testing.T, ctx context.Context, u *hubUser) {
	dir := filepath.Join(u.Home, ".config", "kc-agent")
	path := filepath.Join(dir, "config.yaml")
	old, _ := os.ReadFile(path)
	conf := string(old) + "profiles:\n  keychain:\n    issuer: " + e.kc.Issuer(keycloak.RealmTest) + "\n    store: keychain\n"
	os.MkdirAll(dir, 0o700)
	os.WriteFile(path, []byte(conf), 0o600)
	for _, p := range []string{filepath.Join(u.Home, ".config"), dir, path} {
		os.Chown(p, u.UID, u.GID)
	}
	defer func() {
		if old == nil {
			os.Remove(path)
		} else {
			os.WriteFile(path, old, 0o600)
		}
	}()
	shown := false
	start := time.Now()
	// The agent reloads its config when the file changes: wait for the
	// profile to be known.
	out, err := u.kernel.Execute(ctx, `import time
for i in range(40):
    try:
        kc.login("keychain", timeout=60)
        r = {"raised": None}
    except kc.ConfigError:
        time.sleep(0.25)
        continue
    except Exception as e:
        r = {"raised": type(e).__name__, "message": str(e)}
    break
print(json.dumps(r))`, func(h string) { shown = shown || signInLinkRe.MatchString(h) })
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	json.Unmarshal([]byte(strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])), &r)
	msg, _ := r["message"].(string)
	if r["raised"] == nil || shown || time.Since(start) > 20*time.Second || !strings.Contains(msg, "store") {
		t.Fatalf("login() for a keychain profile without a keychain: %v (sign-in link shown: %v, after %s); want an error at once that names the store", r, shown, time.Since(start))
	}
}
