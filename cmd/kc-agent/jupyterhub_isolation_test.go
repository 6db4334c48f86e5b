//go:build linux

package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
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
		if out["status"] != 403.0 || out["user"] != nil {
			t.Fatalf("%s's route URL: %v, want HTTP 403 from the agent's caller check", who, out)
		}
	})
	t.Run("ProxyEnv", func(t *testing.T) {
		// HTTP(S)_PROXY as a program reads it: a fresh interpreter that
		// trusts the environment.
		out := e.py(t, ctx, neighbour, fmt.Sprintf(`prog = """
import json, requests
out = {}
for name, url in (("http", %s + "/whoami"), ("https", %s.replace("http://", "https://") + "/whoami")):
    try:
        r = requests.get(url, timeout=30, verify=False)
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
		if http["status"] != 403.0 {
			t.Errorf("%s's proxy as HTTP_PROXY: %v, want HTTP 403", who, http)
		}
		if https["error"] != "ProxyError" {
			t.Errorf("%s's proxy as HTTPS_PROXY: %v, want the CONNECT refused (ProxyError)", who, https)
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
