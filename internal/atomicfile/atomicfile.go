// Package atomicfile writes files so that a crash never leaves a
// half-written one: the store, the proxy secret, the CA, the config and the
// service unit all go through it.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write writes data to a temporary file next to path with mode (on
// Windows, a private mode means a DACL for the user alone), syncs it and
// renames it over path.
func Write(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := protect(tmp, mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
