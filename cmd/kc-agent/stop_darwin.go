package main

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// checkOwnAgent makes sure pid is this user's kc-agent before it is
// signalled (a stale lock's reused pid stops nothing).
func checkOwnAgent(pid int) error {
	if pid <= 1 || pid == os.Getpid() {
		return fmt.Errorf("the lock names pid %d, which is not an agent: not stopping it", pid)
	}
	k, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	if uid := int(k.Eproc.Ucred.Uid); uid != os.Getuid() {
		return fmt.Errorf("process %d runs as uid %d, not as you (uid %d): not stopping it", pid, uid, os.Getuid())
	}
	comm := unix.ByteSliceToString(k.Proc.P_comm[:])
	if !strings.HasPrefix(comm, "kc-agent") {
		return fmt.Errorf("process %d is not kc-agent: not stopping it", pid)
	}
	return nil
}
