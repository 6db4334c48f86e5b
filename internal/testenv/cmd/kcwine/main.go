//go:build linux

// Command kcwine runs Windows programs the way the tests do: in a Wine
// prefix with the ProcessPrng DLL Go needs (internal/testenv/wine). For
// people, not for tests: it keeps one prefix of its own, cloned from the
// cached one, so the registry and credentials persist between runs.
//
//	go run ./internal/testenv/cmd/kcwine run kc-agent.exe version
//	eval "$(go run ./internal/testenv/cmd/kcwine env)"; wine reg query 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run'
//	go run ./internal/testenv/cmd/kcwine reset
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/internal/testenv/wine"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "kcwine: "+f+"\n", a...) }
	ctx := context.Background()
	switch os.Args[1] {
	case "run":
		if len(os.Args) < 3 {
			usage()
		}
		prefix := devPrefix(ctx, logf)
		cmd := wine.Command(ctx, prefix, os.Args[2], os.Args[3:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				os.Exit(ee.ExitCode())
			}
			fail(err)
		}
	case "env":
		prefix := devPrefix(ctx, logf)
		for _, kv := range wine.Env(prefix) {
			if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "WINE") {
				fmt.Printf("export %s='%s'\n", k, v)
			}
		}
		fmt.Println("unset DISPLAY WAYLAND_DISPLAY")
	case "reset":
		prefix := devPath()
		wine.Kill(prefix)
		if err := os.RemoveAll(prefix); err != nil {
			fail(err)
		}
	default:
		usage()
	}
}

func devPath() string {
	base, err := keycloak.CacheDir()
	if err != nil {
		fail(err)
	}
	return filepath.Join(base, "wine", "kcwine")
}

func devPrefix(ctx context.Context, logf func(string, ...any)) string {
	dev := devPath()
	if _, err := os.Stat(filepath.Join(dev, "system.reg")); err == nil {
		return dev
	}
	cached, err := wine.CachedPrefix(ctx, logf)
	if err != nil {
		fail(err)
	}
	os.RemoveAll(dev)
	if err := wine.Clone(cached, dev); err != nil {
		fail(err)
	}
	logf("prefix %s", dev)
	return dev
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kcwine run PROGRAM.exe [ARG...] | env | reset")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kcwine: error:", err)
	os.Exit(1)
}
