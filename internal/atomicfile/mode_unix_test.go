//go:build !windows

package atomicfile

import (
	"os"
	"testing"
)

func checkMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
		t.Fatalf("mode %v, want %v (%v)", fi.Mode().Perm(), mode, err)
	}
}
