//go:build unix

package ipc

import (
	"net"

	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// peerUID returns the uid of the process at the other end of a Unix socket.
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	uid, serr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { uid, serr = discovery.PeerUID(fd) }); err != nil {
		return -1, err
	}
	return uid, serr
}
