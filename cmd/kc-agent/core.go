package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// coreName is the program that does everything but the fast path.
const coreName = "kc-agent-core"

// corePath is kc-agent-core beside this program (symlinks resolved, so a
// link to kc-agent in another directory still finds it).
func corePath() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	name := coreName
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return filepath.Join(filepath.Dir(exe), name), nil
}

// runCore runs kc-agent-core with args; it returns only on failure (or, on
// Windows, with the child's exit code).
func runCore(args []string) int {
	path, err := corePath()
	if err == nil {
		_, err = os.Stat(path)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kc-agent: error: %s is missing (%v)\n", coreName, err)
		fmt.Fprintf(os.Stderr, "kc-agent: hint: kc-agent ships as two programs, kc-agent and %s, in one directory; reinstall both (go install github.com/kc-agent/kc-agent/cmd/...@latest)\n", coreName)
		return 1
	}
	return execCore(path, args)
}
