//go:build !windows

package atomicfile

import "os"

func protect(f *os.File, mode os.FileMode) error { return f.Chmod(mode) }
