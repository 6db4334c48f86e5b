package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
)

// execCore runs kc-agent-core as a child with this process's standard
// streams and returns its exit code: Windows has no exec. Ctrl-C reaches
// both processes; the child decides what it means.
func execCore(path string, args []string) int {
	signal.Ignore(os.Interrupt)
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kc-agent: error: running %s: %v\n", path, err)
		return 1
	}
	return 0
}
