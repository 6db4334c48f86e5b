//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/ipc"
)

// autoConfig is the config both users run in these tests: one route, and
// the proxy on the user's own address.
const autoConfig = `profiles:
  default:
    issuer: https://sso.example.invalid/realms/r
    store: file
routes:
  - name: api
    upstream: https://api.example.invalid
proxy:
  listen: auto
`

// listenPy listens on argv[1]:argv[2] until killed: a squatter.
const listenPy = `
import socket, sys, time
s = socket.socket()
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
time.sleep(600)
`

// listenerUID is the uid listening on addr, or -1 when nobody does.
func listenerUID(addr string) int {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1
	}
	o, err := peer.TCPListener(ta)
	if err != nil {
		return -1
	}
	return o.UID
}

// startNobodyAgent runs `kc-agent run` as uid 65534 with autoConfig, in a
// home of its own (config, state and socket), as a neighbour on a shared
// host would.
func startNobodyAgent(t *testing.T, bin string) {
	t.Helper()
	setpriv := testenv.OtherUser(t)
	root, err := os.MkdirTemp("", "kcn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	home := filepath.Join(root, "home")
	nbin := filepath.Join(root, "kc-agent")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(os.Chmod(root, 0o755), os.WriteFile(nbin, data, 0o755), os.MkdirAll(filepath.Join(home, "config"), 0o700),
		os.WriteFile(filepath.Join(home, "config", "config.yaml"), []byte(autoConfig), 0o600)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{home, filepath.Join(home, "config"), filepath.Join(home, "config", "config.yaml")} {
		if err := os.Chown(p, testenv.Nobody, testenv.Nobody); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(setpriv, testenv.AsNobody(nbin, "run")...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "KC_AGENT_CONFIG=" + filepath.Join(home, "config", "config.yaml"),
		"KC_AGENT_STATE_DIR=" + filepath.Join(home, "state"), "KC_AGENT_SOCK=" + filepath.Join(home, "s", "agent.sock")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("nobody's agent said:\n%s", stderr.String())
		}
	})
}

func proxyStatusOf(t *testing.T, a *agentProc) ipc.ProxyStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := a.client.Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st.Proxy
}

// proxy.listen: auto on a shared host: two users (root and uid 65534) get
// different addresses, from their uids, and their agents hold them at the
// same time; a restart keeps the address; with the owner's agent stopped
// the other user's agent does not answer there (a kept URL reaches nobody);
// another uid squatting the address makes status, doctor, env and exec say
// so (and refuse it), and once it is free the proxy starts without a
// restart.
func TestAutoProxyAddressPerUser(t *testing.T) {
	testenv.OtherUser(t)
	bin := buildBinary(t)
	mine, theirs := config.AutoListen(0, true), config.AutoListen(testenv.Nobody, true)
	if mine == theirs {
		t.Fatalf("root and uid %d share %s", testenv.Nobody, mine)
	}
	e := newCLIEnv(t)
	cfgPath := os.Getenv("KC_AGENT_CONFIG")
	if err := errors.Join(os.MkdirAll(filepath.Dir(cfgPath), 0o700), os.WriteFile(cfgPath, []byte(autoConfig), 0o600)); err != nil {
		t.Fatal(err)
	}

	startNobodyAgent(t, bin)
	a := e.startAgent()
	waitFor(t, func() bool { return listenerUID(theirs) == testenv.Nobody }, "uid 65534's agent on "+theirs)
	if ps := proxyStatusOf(t, a); !ps.Running || ps.Addr != mine || listenerUID(mine) != 0 {
		t.Fatalf("root's proxy: %+v (listener uid %d), want it on %s", ps, listenerUID(mine), mine)
	}
	code, stdout, stderr := e.run("env")
	if code != 0 || !strings.Contains(stdout, "@"+mine+"'") || !strings.Contains(stdout, "KC_AGENT_URL_API='http://"+mine+"/api'") ||
		!strings.Contains(stdout, "NO_PROXY='localhost,127.0.0.1,::1,"+strings.Split(mine, ":")[0]+"'") {
		t.Fatalf("env: exit %d\n%s%s", code, stdout, stderr)
	}

	a.stop()
	a = e.startAgent()
	if ps := proxyStatusOf(t, a); !ps.Running || ps.Addr != mine {
		t.Fatalf("after a restart: %+v, want %s", ps, mine)
	}

	// Root's agent stopped, nobody's running: root's address is nobody's.
	a.stop()
	if c, err := net.DialTimeout("tcp", mine, 2*time.Second); err == nil {
		c.Close()
		t.Fatalf("someone answers on %s with root's agent stopped", mine)
	}

	host, port, _ := net.SplitHostPort(mine)
	squatter := asNobody(t, listenPy, host, port)
	waitFor(t, func() bool { return listenerUID(mine) == testenv.Nobody }, "the squatter on "+mine)
	a = e.startAgent()
	ps := proxyStatusOf(t, a)
	if ps.Running || !ps.Retrying || !strings.Contains(ps.Error, "uid 65534") || !strings.Contains(ps.Hint, "proxy.listen: auto") {
		t.Fatalf("status with the address squatted: %+v", ps)
	}
	if _, stdout, _ := e.run("status"); !strings.Contains(stdout, "WAITING for its address") || strings.Contains(stdout, "8421)") {
		t.Errorf("status with the address squatted:\n%s", stdout)
	}
	if _, stdout, _ := e.run("doctor"); !strings.Contains(stdout, "waiting for its address") || strings.Contains(stdout, "127.0.0.1:0") {
		t.Errorf("doctor with the address squatted:\n%s", stdout)
	}
	for _, args := range [][]string{{"env"}, {"exec", "--", "true"}} {
		code, stdout, stderr := e.run(args...)
		if code != exitError || stdout != "" || !strings.Contains(stderr, "not running") || !strings.Contains(stderr, "uid 65534") {
			t.Errorf("%s with the address squatted: exit %d\n%s%s", args[0], code, stdout, stderr)
		}
	}

	squatter.Process.Kill()
	squatter.Wait()
	waitFor(t, func() bool { ps := proxyStatusOf(t, a); return ps.Running && ps.Addr == mine }, "the proxy on its freed address")
	if code, _, stderr := e.run("env"); code != 0 || listenerUID(mine) != 0 {
		t.Fatalf("env once the address is free: exit %d: %s (listener uid %d)", code, stderr, listenerUID(mine))
	}
	if listenerUID(theirs) != testenv.Nobody {
		t.Fatalf("uid 65534's agent lost %s", theirs)
	}
}

// The clients that check listeners refuse an address another uid serves,
// whatever the agent says: env's and exec's check, on a proxy address
// squatted by uid 65534.
func TestProxyOwnerCheckRefusesASquatter(t *testing.T) {
	testenv.OtherUser(t)
	host, port := "127.0.0.1", strconv.Itoa(freePort(t))
	asNobody(t, listenPy, host, port)
	addr := net.JoinHostPort(host, port)
	waitFor(t, func() bool { return listenerUID(addr) == testenv.Nobody }, "the squatter on "+addr)
	err := verifyProxyOwner(addr)
	var ce *cliError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "uid 65534") || !strings.Contains(ce.hint, "proxy.listen: auto") || strings.Contains(ce.hint, ":0") {
		t.Fatalf("a squatted proxy address: %v (%+v)", err, ce)
	}
	if err := verifyProxyOwner(freeAddr(t)); err == nil || !strings.Contains(err.Error(), "nobody listens") {
		t.Fatalf("an address nobody serves: %v", err)
	}
}

func freePort(t *testing.T) int {
	_, p, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}
