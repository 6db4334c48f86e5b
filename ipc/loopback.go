package ipc

import (
	"log/slog"
	"net"

	"github.com/kc-agent/kc-agent/internal/peer"
)

// ListenLoopback listens on a free 127.0.0.1 port and accepts only this
// user's connections (peer.Loopback): the proxy's rule, for the small
// listeners of a sign-in (its redirect, the launcher). Refusals are logged
// to log with the message refusal, and counted by onRefuse when set.
func ListenLoopback(log *slog.Logger, refusal string, onRefuse func()) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SameUserListener{Listener: ln, Peer: peer.Loopback, Log: log, Refusal: refusal, OnRefuse: onRefuse}, nil
}
