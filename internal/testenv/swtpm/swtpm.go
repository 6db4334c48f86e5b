//go:build unix

// Package swtpm runs Debian's swtpm, a software TPM 2.0, for tests of the
// TPM-backed DPoP key: each instance has its own state (its own seeds, so
// it is another machine's TPM to every other instance) and listens on a
// loopback port of its own, speaking the TCG simulator protocol.
package swtpm

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// TPM is a running swtpm.
type TPM struct {
	// Device is what kc-agent's KC_AGENT_TPM takes to use this TPM:
	// mssim:127.0.0.1:PORT.
	Device string
	// StateDir holds the TPM's state (its seeds and NV).
	StateDir string
}

// Start starts a swtpm for t, stopped at its end. Without swtpm the test
// fails under KC_AGENT_REQUIRE_SWTPM=1 (make test sets it) and skips
// otherwise.
func Start(t testing.TB) *TPM {
	t.Helper()
	return run(t, lookPath(t), t.TempDir(), nil)
}

// StartAsNobody starts a swtpm run by another user (testenv.Nobody), as a
// local attacker squatting a port would; it skips (or fails) as
// testenv.OtherUser says.
func StartAsNobody(t testing.TB) *TPM {
	t.Helper()
	bin := lookPath(t)
	setpriv := testenv.OtherUser(t)
	// The state directory must be reachable by nobody: not under the
	// test's own 0700 temporary directory.
	dir, err := os.MkdirTemp("", "swtpm-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	os.Mkdir(filepath.Join(dir, "state"), 0o700)
	if err := os.Chown(filepath.Join(dir, "state"), testenv.Nobody, testenv.Nobody); err != nil {
		t.Fatal(err)
	}
	return run(t, setpriv, dir, testenv.AsNobody(bin))
}

func lookPath(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		if os.Getenv("KC_AGENT_REQUIRE_SWTPM") == "1" {
			t.Fatal("swtpm not found (scripts/install-test-deps.sh installs it: apt-get install swtpm)")
		}
		t.Skip("swtpm not installed (apt-get install swtpm); TPM key tests skipped")
	}
	return bin
}

// run starts bin with args before swtpm's own (setpriv's), its state
// and log in dir.
func run(t testing.TB, bin, dir string, args []string) *TPM {
	t.Helper()
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o700)
	logPath := filepath.Join(dir, "swtpm.log")
	// swtpm binds a port picked here just before; another process may
	// take it in between, so a start that fails is tried again.
	var err error
	for try := 0; try < 3; try++ {
		var addr string
		if addr, err = start(t, bin, args, state, logPath); err == nil {
			return &TPM{Device: "mssim:" + addr, StateDir: state}
		}
	}
	out, _ := os.ReadFile(logPath)
	t.Fatalf("swtpm did not start: %v: %s", err, strings.TrimSpace(string(out)))
	return nil
}

// start runs swtpm on a free loopback port and waits until it answers.
func start(t testing.TB, bin string, args []string, state, logPath string) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	log, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer log.Close()
	args = append(append([]string{}, args...), "socket", "--tpm2", "--server", "type=tcp,bindaddr=127.0.0.1,port="+port,
		"--flags", "not-need-init,startup-clear", "--tpmstate", "dir="+state)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting swtpm: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	if err := waitReady(addr, exited); err != nil {
		cmd.Process.Kill()
		<-exited
		return "", err
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	return addr, nil
}

// waitReady waits until swtpm answers a TPM2_GetRandom at addr.
func waitReady(addr string, exited <-chan struct{}) error {
	getRandom := []byte{0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 0x08}
	frame := append([]byte{0, 0, 0, 8, 0, 0, 0, 0, byte(len(getRandom))}, getRandom...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return errors.New("swtpm exited")
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var size [4]byte
			if _, err = c.Write(frame); err == nil {
				_, err = io.ReadFull(c, size[:])
			}
			c.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swtpm does not answer on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
