//go:build !linux

package proxy

import (
	"net"
	"os"
)

// tcpPeerUID: only Linux exposes the owner of a loopback TCP socket
// cheaply; elsewhere the proxy secret and the loopback-only listener are
// the guards.
func tcpPeerUID(server, client *net.TCPAddr) (int, error) { return os.Getuid(), nil }
