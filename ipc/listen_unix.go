//go:build unix

package ipc

import (
	"net"
	"syscall"
)

// listenPrivate creates the socket already 0600: there is no moment at
// which another user could connect before the chmod.
func listenPrivate(path string) (net.Listener, error) {
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}
