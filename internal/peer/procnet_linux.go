package peer

import (
	"errors"
	"fmt"
	"net"
)

// socket finds the owner of the TCP socket whose local address is local
// and whose remote address is remote. The proxy asks on every accept:
// sock_diag answers in one lookup; /proc/net/tcp, read whole, is the
// fallback.
func socket(local, remote *net.TCPAddr) (Owner, error) {
	if uid, ok, err := sockDiagUID(local, remote); ok {
		return Owner{UID: uid}, err
	}
	uid, err := procConnUID(local, remote)
	return Owner{UID: uid}, err
}

func procConnUID(local, remote *net.TCPAddr) (int, error) { return LinuxUID("/proc", local, remote) }

// Listener finds the owner of the socket listening on addr (a wildcard
// listener on the same port counts: it receives the traffic too).
func TCPListener(addr *net.TCPAddr) (Owner, error) {
	uid, err := LinuxUID("/proc", addr, nil)
	if err == nil || !errors.Is(err, ErrNoSocket) {
		return Owner{UID: uid}, err
	}
	for _, any := range []net.IP{net.IPv4zero, net.IPv6zero} {
		if uid, err := LinuxUID("/proc", &net.TCPAddr{IP: any, Port: addr.Port}, nil); err == nil {
			return Owner{UID: uid}, nil
		}
	}
	return Owner{UID: -1}, fmt.Errorf("nobody listens on %s: %w", addr, ErrNoSocket)
}

// Visible says whether this system shows socket owners.
const Visible = true
