//go:build unix

package peer

import (
	"errors"
	"net"
)

// Unix finds the user of the process at the other end of a connected Unix
// socket c, whether c was accepted (the caller) or dialed (the agent).
func Unix(c net.Conn) (Owner, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Owner{UID: -1}, errors.New("not a Unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Owner{UID: -1}, err
	}
	uid, serr := -1, error(nil)
	if err := raw.Control(func(fd uintptr) { uid, serr = unixUID(fd) }); err != nil {
		return Owner{UID: -1}, err
	}
	return Owner{UID: uid}, serr
}
