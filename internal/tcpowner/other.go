//go:build !linux && !windows

package tcpowner

import "net"

// Supported says whether this system shows socket owners.
const Supported = false

func socket(local, remote *net.TCPAddr) (Owner, error) { return Owner{UID: -1}, ErrUnsupported }

// Listener can not tell on this system: see Supported.
func Listener(addr *net.TCPAddr) (Owner, error) { return Owner{UID: -1}, ErrUnsupported }
