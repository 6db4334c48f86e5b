//go:build !windows

package privatefile

import (
	"os"
)

// ProtectDir makes dir the user's alone (0700).
func ProtectDir(dir string) error { return os.Chmod(dir, 0o700) }

// Fix is the command that makes path private again.
func Fix(path string) string { return "chmod 600 " + path }
