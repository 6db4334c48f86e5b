//go:build unix

package main

import (
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// The goroutine that passes signals on to the child ends with the child:
// `kc-agent exec` run in-process (tests, or a long-lived caller) leaks
// nothing.
func TestSignalForwardingEndsWithTheChild(t *testing.T) {
	run := func() {
		child := exec.Command("true")
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		if err := waitForwardingSignals(child); err != nil {
			t.Fatal(err)
		}
	}
	// The first run starts os/signal's own goroutine, which stays: count
	// from after it.
	run()
	before := runtime.NumGoroutine()
	for range 5 {
		run()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after five more children, %d before", n, before)
	}
}
