//go:build unix && !linux

package main

import "testing"

// checkNoCoreDumps: only Linux has PR_GET_DUMPABLE to look at.
func checkNoCoreDumps(t *testing.T) {}
