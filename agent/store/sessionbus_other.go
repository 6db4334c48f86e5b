//go:build !unix || darwin

package store

// sessionBus: the macOS Keychain and the Windows Credential Manager need
// no bus.
func sessionBus() error { return nil }
