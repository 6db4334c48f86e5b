package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// checkOwnAgent makes sure pid is this user's `kc-agent run` before it is
// signalled: a stale lock (a reused pid) or a lock naming a neighbour's
// process must stop nothing. The agent is not dumpable (no /proc/pid/exe
// for its own user), so the world-readable status and cmdline are read.
func checkOwnAgent(pid int) error {
	if pid <= 1 || pid == os.Getpid() {
		return fmt.Errorf("the lock names pid %d, which is not an agent: not stopping it", pid)
	}
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	me := strconv.Itoa(os.Getuid())
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			for _, uid := range strings.Fields(rest) {
				if uid != me {
					return fmt.Errorf("process %d runs as uid %s, not as you (uid %s): not stopping it", pid, uid, me)
				}
			}
		}
	}
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	if !isAgentArgv(strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")) {
		return fmt.Errorf("process %d is not `kc-agent run`: not stopping it", pid)
	}
	return nil
}

// isAgentArgv tells an agent's argv: kc-agent (any install location, the
// wheel's copy too) with the run command.
func isAgentArgv(argv []string) bool {
	return len(argv) >= 2 && strings.HasPrefix(filepath.Base(argv[0]), "kc-agent") && argv[1] == "run"
}
