//go:build !windows

package testenv

import "testing"

// UnderWine is false: this is not a Windows binary.
func UnderWine() bool { return false }

// TempDir is t.TempDir (see the Windows build for why it exists).
func TempDir(t testing.TB) string { t.Helper(); return t.TempDir() }
