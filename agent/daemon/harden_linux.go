package daemon

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// harden keeps other processes of the same user from reading the agent's
// memory (ptrace, /proc/pid/mem), writes no core dumps (they would hold
// tokens), and keeps files it creates private.
func harden() {
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0})
	syscall.Umask(0o077)
}
