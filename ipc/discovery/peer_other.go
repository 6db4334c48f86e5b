//go:build !linux && !darwin

package discovery

import (
	"errors"
	"os"
	"runtime"
)

// PeerUID: where the OS offers no peer credentials, the 0700 directory and
// 0600 socket are the only guard (Windows ACLs the per-user directory).
func PeerUID(fd uintptr) (int, error) {
	if runtime.GOOS == "windows" {
		return os.Getuid(), nil
	}
	return -1, errors.New("peer credentials are not supported on " + runtime.GOOS)
}
