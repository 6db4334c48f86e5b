package config

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

const (
	legitYAML    = "profiles:\n  legit:\n    issuer: https://sso.example.com/realms/legit\n"
	attackerYAML = "profiles:\n  attacker:\n    issuer: https://evil.example.com/realms/x\n"
)

// TestSystemFileSwapRace: the system path is a symbolic link into a
// directory another user can write, and that user swaps the file there
// with their own in a loop (renameat2 RENAME_EXCHANGE, as fast as it
// goes). 0 of 1000 loads may take the attacker's file (the bar is
// 200; the read-then-check by name this replaces lost about 4 in 1000 here): each either refuses
// the system file or reads the administrator's. The same for a link that
// itself lies in the writable directory and leads to a safe one.
func TestSystemFileSwapRace(t *testing.T) {
	setpriv := testenv.OtherUser(t)
	base, err := os.MkdirTemp("", "kc-swap")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	etc, shared := filepath.Join(base, "etc"), filepath.Join(base, "shared")
	for dir, mode := range map[string]os.FileMode{base: 0o755, etc: 0o755, shared: 0o777} {
		os.Mkdir(dir, mode)
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(base, "config.test")
	copyFile(t, os.Args[0], bin)

	t.Run("link into the writable directory", func(t *testing.T) {
		target := filepath.Join(shared, "config.yaml")
		writeRoots(t, target, legitYAML)
		link := filepath.Join(etc, "config.yaml")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		swapRace(t, setpriv, bin, link, target, filepath.Join(shared, "evil.yaml"))
	})
	t.Run("link in the writable directory", func(t *testing.T) {
		real := filepath.Join(etc, "real.yaml")
		writeRoots(t, real, legitYAML)
		link := filepath.Join(shared, "system.yaml")
		if err := os.Symlink(real, link); err != nil {
			t.Fatal(err)
		}
		swapRace(t, setpriv, bin, link, link, filepath.Join(shared, "evil2.yaml"))
	})
}

// swapRace starts the attacker, who swaps swapped and evil (its own file)
// in a loop, and loads the config at path 1000 times.
func swapRace(t *testing.T, setpriv, bin, path, swapped, evil string) {
	t.Setenv("KC_AGENT_SYSTEM_CONFIG", path)
	attacker := exec.Command(setpriv, testenv.AsNobody(bin, "-test.run=^TestHelperSwapper$")...)
	attacker.Env = append(os.Environ(), "KC_AGENT_SWAP_A="+swapped, "KC_AGENT_SWAP_EVIL="+evil)
	attacker.Stderr = os.Stderr
	if err := attacker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { attacker.Process.Kill(); attacker.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Lstat(evil); err != nil; _, err = os.Lstat(evil) {
		if time.Now().After(deadline) {
			t.Fatal("the attacker did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	user := userFile(t, mine)
	taken, legit, refused, raced := 0, 0, 0, 0
	const loads = 1000
	for range loads {
		// A plain read of the name, to show that the swap is live.
		if data, _ := os.ReadFile(path); strings.Contains(string(data), "attacker") {
			raced++
		}
		c, err := Load(user)
		switch {
		case err != nil:
			t.Fatalf("the user's config failed: %v", err)
		case c.Profiles["attacker"].Issuer != "":
			taken++
		case c.Profiles["legit"].Issuer != "":
			legit++
		case c.SystemError() != nil:
			refused++
		default:
			t.Fatalf("neither file and no reason: %v", c.ProfileNames())
		}
	}
	t.Logf("%d loads: %d took the attacker's file, %d the administrator's, %d refused (a plain read got the attacker's %d times)", loads, taken, legit, refused, raced)
	if taken != 0 {
		t.Fatalf("%d of %d loads took the attacker's file", taken, loads)
	}
	if raced == 0 {
		t.Fatal("the attacker never won a plain read: the race did not run")
	}
}

// TestHelperSwapper is the attacker of TestSystemFileSwapRace, run as
// another user: it writes its own file and swaps it with the
// administrator's until killed.
func TestHelperSwapper(t *testing.T) {
	a, evil := os.Getenv("KC_AGENT_SWAP_A"), os.Getenv("KC_AGENT_SWAP_EVIL")
	if a == "" {
		t.Skip("the attacker of TestSystemFileSwapRace")
	}
	if err := os.WriteFile(evil, []byte(attackerYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	for {
		if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, evil, unix.RENAME_EXCHANGE); err != nil {
			t.Fatal(err)
		}
	}
}

func writeRoots(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
