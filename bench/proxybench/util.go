//go:build unix

package main

import (
	"crypto/tls"
	"net"
)

func tlsListen(cfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, cfg), nil
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
