//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// detach puts the autostarted agent in its own session, so it outlives the
// shell and is not hit by the terminal's Ctrl-C.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
