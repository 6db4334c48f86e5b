package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/installers"
	"github.com/kc-agent/kc-agent/internal/winsid"
)

// checkOwnAgent makes sure pid is this user's kc-agent (its SID, and the
// image of that very pid: found by pid, never by image name).
func checkOwnAgent(pid int) error {
	if pid <= 0 || uint32(pid) == windows.GetCurrentProcessId() {
		return fmt.Errorf("the lock names pid %d, which is not an agent: not stopping it", pid)
	}
	me, err := winsid.Current()
	if err != nil {
		return err
	}
	sid, err := winsid.OfProcess(uint32(pid))
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	if sid != me {
		return fmt.Errorf("process %d runs as %s, not as you: not stopping it", pid, winsid.Name(sid))
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	defer windows.CloseHandle(h)
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n := uint32(len(buf))
	if err := windows.QueryFullProcessImageName(h, 0, &buf[0], &n); err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	if !strings.HasPrefix(strings.ToLower(filepath.Base(windows.UTF16ToString(buf[:n]))), "kc-agent") {
		return fmt.Errorf("process %d is not kc-agent: not stopping it", pid)
	}
	return nil
}

// terminate ends the agent by its pid (a detached process has no console
// to send Ctrl-Break to); the stored login is written before any token is
// published, so nothing is lost.
func terminate(pid int) error { return installers.StopPID(uint32(pid)) }

// processRuns tells whether pid is still there.
func processRuns(pid int) bool {
	h, err := windows.OpenProcess(windows.SYNCHRONIZE, false, uint32(pid))
	if err != nil {
		return false
	}
	defer windows.CloseHandle(h)
	ev, err := windows.WaitForSingleObject(h, 0)
	return err == nil && ev == uint32(windows.WAIT_TIMEOUT)
}
