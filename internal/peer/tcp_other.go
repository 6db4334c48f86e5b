//go:build !linux && !windows

package peer

import "net"

// Visible says whether this system shows socket owners.
const Visible = false

func socket(local, remote *net.TCPAddr) (Owner, error) { return Owner{UID: -1}, ErrUnsupported }

// TCPListener can not tell on this system: see Visible.
func TCPListener(addr *net.TCPAddr) (Owner, error) { return Owner{UID: -1}, ErrUnsupported }
