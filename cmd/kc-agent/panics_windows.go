package main

import (
	"os"

	"golang.org/x/sys/windows"
)

// panicsTo makes f the process's standard error handle, which the Go
// runtime writes a panic or a fatal error to: started from the Run key,
// the agent's stderr is NUL, and a crash would leave no trace in its log.
func panicsTo(f *os.File) {
	_ = windows.SetStdHandle(windows.STD_ERROR_HANDLE, windows.Handle(f.Fd()))
}
