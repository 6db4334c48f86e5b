//go:build unix

// Command soak runs the agent for a while (10 minutes by default) against a
// real Keycloak with 10 s access tokens: a client through the proxy every
// 50 ms and `kc-agent token --min-valid 3s` every second. It reports 401s,
// tokens served with less than the asked validity, and the agent's RSS at
// start and end. Run by hand: `make soak` (bench/soak.sh).
//
// With -dpop refresh (SOAK_DPOP=refresh make soak) the profile binds its
// login to a key, against a copy of the realm whose client policy binds
// refresh tokens only (dpop-bind-enforcer, "Bind only refresh token for
// public client"): every refresh carries a proof, the proxy's API gets
// Bearer tokens.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

func main() {
	dur := flag.Duration("d", 10*time.Minute, "how long to soak")
	bin := flag.String("bin", "bin/kc-agent", "kc-agent binary")
	mode := flag.String("dpop", "", "the profile's dpop mode (refresh: a realm copy with refresh-token-only binding)")
	flag.Parse()
	ok, err := soak(*bin, *dur, *mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak: error:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

func soak(bin string, dur time.Duration, mode string) (bool, error) {
	ctx := context.Background()
	kc, err := keycloak.Ensure(ctx, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "soak: "+f+"\n", a...) })
	if err != nil {
		return false, err
	}
	bin, _ = filepath.Abs(bin)
	dir, _ := os.MkdirTemp("", "kcsoak")
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "config.yaml")
	os.Setenv("KC_AGENT_CONFIG", cfgPath)
	os.Setenv("KC_AGENT_STATE_DIR", filepath.Join(dir, "state"))
	os.Setenv("KC_AGENT_SOCK", filepath.Join(dir, "s", "agent.sock"))
	os.Setenv("KC_AGENT_NO_AUTOSTART", "1")
	realm, drop, err := soakRealm(ctx, kc, mode, cfgPath)
	if err != nil {
		return false, err
	}
	defer drop()
	if err := keycloak.LoginWithCLI(bin, kc.Issuer(realm), "erin", "erin-pw"); err != nil {
		return false, err
	}
	addr := addRoute(kc.Issuer(realm), cfgPath)

	agent := exec.Command(bin, "run", "--log-level", "warn")
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return false, err
	}
	defer func() { agent.Process.Signal(os.Interrupt); agent.Wait() }()
	c, _ := ipc.NewClient()
	for i := 0; c.Health(ctx) != nil; i++ {
		if i > 100 {
			return false, fmt.Errorf("agent did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	rssStart := testenv.RSSKB(agent.Process.Pid)
	var proxied, unauthorized, other, tokens, short, tokenErr int
	end := time.Now().Add(dur)
	nextToken := time.Now()
	for time.Now().Before(end) {
		resp, err := http.Get("http://" + addr + "/api/soak")
		switch {
		case err != nil:
			other++
		case resp.StatusCode == 401:
			unauthorized++
		case resp.StatusCode != 200:
			other++
		}
		if resp != nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		proxied++
		if time.Now().After(nextToken) {
			nextToken = nextToken.Add(time.Second)
			out, err := exec.Command(bin, "token", "--format", "json", "--min-valid", "3s").Output()
			tokens++
			var tr struct {
				ExpiresAt string `json:"expires_at"`
			}
			if err != nil || json.Unmarshal(out, &tr) != nil {
				tokenErr++
			} else if at, _ := time.Parse(time.RFC3339, tr.ExpiresAt); time.Until(at) < 2*time.Second {
				short++ // expires_at is truncated to seconds: allow that second
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	rssEnd := testenv.RSSKB(agent.Process.Pid)
	refreshes, login := status(ctx, c)
	pass := unauthorized == 0 && short == 0 && tokenErr == 0 && other == 0 && (mode == "" || login == mode)
	verdict := map[bool]string{true: "PASS", false: "FAIL"}[pass]
	fmt.Printf("%s: soak %s: %d proxied requests (%d x 401, %d other errors), %d token calls (%d errors, %d below min-valid), %d refreshes (login dpop mode %q), agent RSS %d KiB -> %d KiB\n",
		verdict, dur, proxied, unauthorized, other, tokens, tokenErr, short, refreshes, login, rssStart, rssEnd)
	return pass, nil
}

// addRoute starts a resource server that checks the realm's tokens,
// routes to it through the proxy, and returns the proxy's address.
func addRoute(issuer, cfgPath string) string {
	t := &testing.T{}
	ca := testenv.NewTestCA(t)
	rs := testenv.StartResourceServer(t, ca, issuer, "warehouse-api")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfg, _ := os.ReadFile(cfgPath)
	cfg = append(cfg, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s\nproxy:\n  listen: %s\n  ca_file: %s\n", rs.URL, addr, ca.PEMPath)...)
	os.WriteFile(cfgPath, cfg, 0o600)
	return addr
}

// status is the profile's refresh count and the DPoP mode its login is in.
func status(ctx context.Context, c *ipc.Client) (int, string) {
	st, err := c.Status(ctx)
	if err != nil || len(st.Profiles) != 1 {
		return -1, ""
	}
	return st.Profiles[0].Refreshes, st.Profiles[0].DPoPLogin
}

// soakRealm is the realm to soak against: the shared short-token realm,
// or for a dpop mode a copy of it whose client policy binds refresh
// tokens only; the profile is written with the mode before the login.
func soakRealm(ctx context.Context, kc *keycloak.Server, mode, cfgPath string) (string, func(), error) {
	if mode == "" {
		return keycloak.RealmShort, func() {}, nil
	}
	realm := fmt.Sprintf("soak-dpop-%d", os.Getpid())
	drop := func() { kc.Admin().DeleteRealm(context.Background(), realm) }
	if err := kc.Admin().CopyRealm(ctx, keycloak.RealmShort, realm, nil); err != nil {
		return "", nil, err
	}
	cfg := fmt.Sprintf("profiles:\n  default:\n    issuer: %s\n    dpop: %s\n", kc.Issuer(realm), mode)
	err := kc.Admin().RequireDPoP(ctx, realm, true)
	if err == nil {
		err = os.WriteFile(cfgPath, []byte(cfg), 0o600)
	}
	if err != nil {
		drop()
		return "", nil, err
	}
	return realm, drop, nil
}
