//go:build unix

package main

import (
	"errors"
	"syscall"
)

// terminate asks the agent to end (SIGTERM: it closes its socket and
// proxy and releases the lock).
func terminate(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }

// processRuns tells whether pid is still there.
func processRuns(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
