//go:build !linux && !darwin

package main

// askAgent: the fast path is for Linux and macOS; elsewhere every call goes
// to the core.
func askAgent(req []byte) ([]byte, string, askResult) { return nil, "", askCore }
