//go:build faults

// Fault scenarios against real peers: `make faults` (CI runs it after the
// main suite, alone, because it kills the shared Keycloak and the Secret
// Service). Each prints a PASS/FAIL line through the test runner.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

type agentCmd struct {
	cmd *exec.Cmd
	log string
}

// startAgentProcess runs the real binary's `kc-agent run`.
func startAgentProcess(t *testing.T, e *cliEnv, bin string) *agentCmd {
	t.Helper()
	logPath := filepath.Join(e.dir, fmt.Sprintf("agent-%d.log", time.Now().UnixNano()))
	f, _ := os.Create(logPath)
	cmd := exec.Command(bin, "run", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c, _ := ipc.NewClient()
	waitFor(t, func() bool { return c.Health(context.Background()) == nil }, "the agent process to answer")
	a := &agentCmd{cmd: cmd, log: logPath}
	t.Cleanup(func() {
		a.cmd.Process.Signal(syscall.SIGTERM)
		a.cmd.Wait()
		data, _ := os.ReadFile(logPath)
		e.mu.Lock()
		e.outputs = append(e.outputs, string(data))
		e.mu.Unlock()
	})
	return a
}

// kill -9 of the agent in the middle of a refresh with rotation on
// (revokeRefreshToken, refreshTokenMaxReuse 1), then a restart: the stored
// offline token still works, every time.
func TestFaultKillDuringRefresh(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	e.login(keycloak.RealmReuse, "alice", "alice-pw")
	bin := buildBinary(t)
	c, _ := ipc.NewClient()
	for i, delay := range []time.Duration{0, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond} {
		a := startAgentProcess(t, e, bin)
		go c.Token(context.Background(), ipc.TokenRequest{Profile: e.profile, MinValid: 9})
		time.Sleep(delay)
		a.cmd.Process.Kill() // SIGKILL: no chance to finish anything
		a.cmd.Wait()
		a2 := startAgentProcess(t, e, bin)
		tok, code, stderr := e.tokenJSON("--min-valid", "9s")
		if code != 0 || tok.AccessToken == "" {
			t.Fatalf("FAIL: round %d (kill after %s): the stored offline token no longer works: %s", i, delay, stderr)
		}
		a2.cmd.Process.Signal(syscall.SIGTERM)
		a2.cmd.Wait()
	}
	t.Log("PASS: kill -9 during refreshes with rotation: the stored token survived every time")
}

// Keycloak stopped and restarted while the agent serves: cached tokens keep
// flowing, the agent degrades, then recovers on its own.
func TestFaultKeycloakRestart(t *testing.T) {
	e, agent, first := loggedInAgent(t, keycloak.RealmShort, "frank")
	kc := e.keycloak()
	keycloak.Terminate(kc)
	again, code, _ := e.tokenJSON()
	if code != 0 || again.AccessToken != first.AccessToken {
		t.Fatal("FAIL: the cached token was not served while Keycloak was down")
	}
	waitFor(t, func() bool { return agent.mgr.Status()[0].State == tokens.StateDegraded }, "degraded")
	if _, err := keycloak.Restart(context.Background(), kc, t.Logf); err != nil {
		t.Fatalf("restarting Keycloak: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if _, code, _ := e.tokenJSON("--min-valid", "8s"); code == 0 && agent.mgr.Status()[0].State == tokens.StateActive {
			t.Log("PASS: Keycloak stopped and restarted: served from cache, degraded, recovered")
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("FAIL: no recovery after Keycloak restarted: %+v", agent.mgr.Status()[0])
}

// The Secret Service dies while the agent runs: tokens keep being served,
// the rotated offline token waits in memory (status says so) and is saved
// once the keyring is back.
func TestFaultSecretServiceKilled(t *testing.T) {
	e, agent, first := loggedInAgent(t, keycloak.RealmShort, "grace")
	before, _ := e.stored()
	if n := killKeyringDaemons(t); n == 0 {
		t.Fatal("no gnome-keyring-daemon of this session found")
	}
	// Force a refresh once the cached token has less than 9 s left: Keycloak
	// hands out a new offline token, and saving it now fails.
	time.Sleep(time.Until(first.ExpiresAt.Add(-8 * time.Second)))
	if _, code, stderr := e.tokenJSON("--min-valid", "9s"); code != 0 {
		t.Fatalf("FAIL: no token while the keyring is down: %s", stderr)
	}
	waitFor(t, func() bool { return agent.mgr.Status()[0].PersistPending }, "status to show the unsaved token")
	// The daemon forks and keeps its output open: no pipes, or Run waits
	// for it forever.
	cmd := exec.Command("gnome-keyring-daemon", "--unlock", "--replace", "--components=secrets")
	cmd.Stdin = strings.NewReader("kc-agent-test")
	if err := cmd.Run(); err != nil {
		t.Fatalf("restarting gnome-keyring: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if !agent.mgr.Status()[0].PersistPending {
			after, err := e.stored()
			if err != nil || after.RefreshToken == before.RefreshToken {
				t.Fatalf("FAIL: pending cleared but the store holds the old token (%v)", err)
			}
			t.Log("PASS: Secret Service killed: tokens served, rotated token saved after it came back")
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatal("FAIL: the rotated token was never saved after the keyring came back")
}

// killKeyringDaemons kills the gnome-keyring-daemon of this test's D-Bus
// session only (matched through its environment), like a crash would.
func killKeyringDaemons(t *testing.T) int {
	out, _ := exec.Command("pgrep", "-x", "gnome-keyring-d").Output()
	bus := "DBUS_SESSION_BUS_ADDRESS=" + os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	n := 0
	for _, pid := range strings.Fields(string(out)) {
		env, err := os.ReadFile("/proc/" + pid + "/environ")
		if err != nil || !strings.Contains(string(env), bus+"\x00") {
			continue
		}
		if p, err := strconv.Atoi(pid); err == nil && syscall.Kill(p, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// Disk full under a file store: the token is served, the save retried, and
// it lands once there is room again.
func TestFaultDiskFull(t *testing.T) {
	testenv.OtherUser(t) // root, to mount a small tmpfs
	e := newCLIEnv(t)
	state := filepath.Join(e.dir, "small")
	os.MkdirAll(state, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", state).CombinedOutput(); err != nil {
		t.Skipf("can not mount tmpfs here: %s", out)
	}
	defer exec.Command("umount", "-l", state).Run()
	t.Setenv("KC_AGENT_STATE_DIR", state)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	e.login(keycloak.RealmShort, "ivan", "ivan-pw", "--store", "file")
	agent := e.startAgent()
	first, code, _ := e.tokenJSON()
	if code != 0 {
		t.Fatal("no token before the fault")
	}
	filler := filepath.Join(state, "filler")
	exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=4k", "count=100000").Run() // until ENOSPC
	time.Sleep(time.Until(first.ExpiresAt.Add(-8 * time.Second)))
	if _, code, stderr := e.tokenJSON("--min-valid", "9s"); code != 0 {
		t.Fatalf("FAIL: no token with a full disk: %s", stderr)
	}
	waitFor(t, func() bool { return agent.mgr.Status()[0].PersistPending }, "status to show the unsaved token")
	os.Remove(filler)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if !agent.mgr.Status()[0].PersistPending {
			if _, err := e.stored(); err != nil {
				t.Fatalf("FAIL: token file unreadable after recovery: %v", err)
			}
			t.Log("PASS: disk full: served from memory, saved once there was room")
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatal("FAIL: the token was never saved after space came back")
}
