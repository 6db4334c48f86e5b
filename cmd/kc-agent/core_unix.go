//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"
)

// execCore replaces this process with kc-agent-core: same pid, same
// standard streams, same signals, and its exit code is the caller's.
func execCore(path string, args []string) int {
	argv := append([]string{os.Args[0]}, args...)
	err := syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "kc-agent: error: running %s: %v\n", path, err)
	fmt.Fprintln(os.Stderr, "kc-agent: hint: check that the file is executable, or reinstall kc-agent")
	return 1
}
