//go:build !windows

package main

import "os"

// panicsTo: service managers on Unix keep the agent's stderr (the journal,
// launchd's log), where the runtime writes a panic.
func panicsTo(f *os.File) {}
