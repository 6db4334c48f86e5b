//go:build !windows

package privatefile

import (
	"fmt"
	"os"
)

// Check refuses a file group or others may read or write.
func Check(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return &ExposedError{Path: path, Detail: fmt.Sprintf("mode %v", fi.Mode().Perm())}
	}
	return nil
}

// ProtectDir makes dir the user's alone (0700).
func ProtectDir(dir string) error { return os.Chmod(dir, 0o700) }

// Fix is the command that makes path private again.
func Fix(path string) string { return "chmod 600 " + path }
