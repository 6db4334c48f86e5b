//go:build linux

package wine

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Require skips the test when Wine or mingw is missing, and fails it
// instead under KC_AGENT_REQUIRE_WINE=1 (make test sets it).
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Windows programs under Wine; skipped with -short")
	}
	if m := Missing(); m != "" {
		if os.Getenv("KC_AGENT_REQUIRE_WINE") == "1" {
			t.Fatalf("KC_AGENT_REQUIRE_WINE=1: %s", m)
		}
		t.Skip(m)
	}
}

// Prefix gives the test a private Wine prefix, cloned from the cached one.
// At the end every Windows process in it is killed and the prefix removed
// from the Linux side (Wine can't remove directories, see the package doc).
func Prefix(t testing.TB) string {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := NewClone(ctx, t.Logf)
	if err != nil {
		t.Fatalf("wine prefix: %v", err)
	}
	t.Cleanup(func() {
		if err := Remove(dir); err != nil {
			t.Errorf("removing the wine prefix: %v", err)
		}
	})
	// A wineserver that stays up between programs: without it each program
	// that finds none starts one and Wine's services again (seconds each).
	// It exits by itself 30 s after the last program if the test dies
	// before its cleanup. Its output is not waited for: it forks.
	srv := exec.Command("sh", "-c", "umask 077 && exec wineserver -p30")
	srv.Env = Env(dir)
	if err := srv.Run(); err != nil {
		t.Fatalf("wineserver -p30: %v", err)
	}
	// The first program in a prefix starts Wine's services (seconds on a
	// busy machine); start them now, so that the test's first program
	// doesn't race them with its own timeouts.
	start := time.Now()
	if out, err := CombinedOutput(Command(ctx, dir, "cmd.exe", "/c", "exit")); err != nil {
		t.Fatalf("starting the wine prefix (cmd.exe /c exit): %v\n%s", err, out)
	}
	t.Logf("wine prefix %s up in %s", dir, time.Since(start).Round(10*time.Millisecond))
	return dir
}
