// Package peer tells who is on the other end: the user behind a local TCP
// socket, a Unix socket's peer, a named pipe's client or server. Loopback
// is shared by every user of a machine, and a pipe name is first come,
// first served, so kc-agent asks before it trusts one: the socket API and
// the proxy refuse callers of other users, a client checks the agent it
// reaches, `env` and `doctor` check that the proxy's port is served by
// this user, and nothing sends a token in the clear to a loopback port
// another user listens on. The policy (who is trusted) stays with the
// callers; this package only answers who.
//
// TCP: Linux answers with the socket's uid, from sock_diag (one lookup by
// 4-tuple) or /proc/net/tcp as the fallback. Windows answers with the
// user SID of the process that owns the socket (GetExtendedTcpTable, then
// that process's token). Other systems report ErrUnsupported (see
// Visible). Unix sockets answer with the peer's uid (SO_PEERCRED,
// LOCAL_PEERCRED), pipes with the SID of the process at the other end.
package peer

import (
	"errors"
	"fmt"
	"net"
)

// Owner is the user a socket belongs to: a uid on Unix, a user SID on
// Windows (where UID is -1).
type Owner struct {
	UID int
	SID string
	// PID is the owning process on Windows, 0 elsewhere.
	PID int
}

// Self reports whether the socket is this process's user's.
func (o Owner) Self() bool { return isSelf(o) }

// Superuser reports whether the socket is root's (LocalSystem's). Root can
// read the user's keychain anyway, but a socket root made may be served by
// another user (see agent/cleartext.Check): not trusted by itself.
func (o Owner) Superuser() bool { return isSuperuser(o) }

func (o Owner) String() string {
	switch {
	case o.SID != "":
		return describeSID(o.SID)
	case o.UID < 0:
		return "an unknown owner"
	}
	return fmt.Sprintf("uid %d", o.UID)
}

var (
	// ErrNoSocket means no such socket exists (nobody listens, or the
	// connection is gone).
	ErrNoSocket = errors.New("no such socket")
	// ErrNoOwner means the socket exists but its owner can't be told
	// (Windows: no owning process, or one that can not be opened). Callers
	// refuse such a socket.
	ErrNoOwner = errors.New("the socket's owner is not known")
	// ErrUnsupported means this system does not show socket owners.
	ErrUnsupported = errors.New("socket owners are not visible on this system")
)

// Peer finds the owner of the other end of a loopback TCP connection c,
// whether c was accepted (the caller) or dialed (the server).
func TCP(c net.Conn) (Owner, error) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return Owner{UID: -1}, errors.New("not a TCP connection")
	}
	// The other end is the socket whose local address is our remote one.
	return socket(remote, local)
}
