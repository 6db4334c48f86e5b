//go:build !linux && !darwin

package ipc

import (
	"errors"
	"net"
	"os"
	"runtime"
)

// peerUID: where the OS offers no peer credentials, the 0700 directory and
// 0600 socket are the only guard (Windows ACLs the per-user directory).
func peerUID(c *net.UnixConn) (int, error) {
	if runtime.GOOS == "windows" {
		return os.Getuid(), nil
	}
	return -1, errors.New("peer credentials are not supported on " + runtime.GOOS)
}
