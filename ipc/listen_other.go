//go:build !unix

package ipc

import "net"

func listenPrivate(path string) (net.Listener, error) { return net.Listen("unix", path) }
