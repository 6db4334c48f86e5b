//go:build unix && !linux && !darwin

package main

import (
	"fmt"
	"os"
)

// checkOwnAgent: these systems offer no portable way to see a process's
// owner, so only the pid the verified agent or the lock names is used, and
// never this process.
func checkOwnAgent(pid int) error {
	if pid <= 1 || pid == os.Getpid() {
		return fmt.Errorf("the lock names pid %d, which is not an agent: not stopping it", pid)
	}
	return nil
}
