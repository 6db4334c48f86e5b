//go:build !linux

package ipc

import (
	"errors"
	"net"
	"os"
)

// ErrNoListener means no socket listens on the address.
var ErrNoListener = errors.New("no listener")

// errUnsupported: only Linux exposes the owner of a loopback TCP socket
// cheaply; elsewhere the proxy secret and the loopback-only listener are
// the guards.
var errUnsupported = errors.New("socket owners are not visible on this system")

// TCPConnUID reports this user: see errUnsupported.
func TCPConnUID(server, client *net.TCPAddr) (int, error) { return os.Getuid(), nil }

// TCPListenerUID can not tell on this system.
func TCPListenerUID(addr *net.TCPAddr) (int, error) { return -1, errUnsupported }

// ListenerOwnerKnown says whether TCPListenerUID works here.
const ListenerOwnerKnown = false
