package main

import (
	"testing"

	"golang.org/x/sys/unix"
)

// checkNoCoreDumps checks, in the agent's test process (where run set
// them), that no core dump of the agent can hold a token.
func checkNoCoreDumps(t *testing.T) {
	t.Helper()
	if d, _ := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); d != 0 {
		t.Error("the agent process is still dumpable")
	}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_CORE, &rl); rl.Cur != 0 {
		t.Error("the agent may still write core dumps")
	}
}
