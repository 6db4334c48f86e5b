package ipc

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"runtime"

	"github.com/kc-agent/kc-agent/internal/peer"
)

// LoopbackPeer finds the user behind an accepted loopback TCP connection
// (a uid on Unix, the owning process's SID on Windows). A caller whose
// owner can't be found is refused, except on macOS, which shows no socket
// owners: there the loopback-only listener and the secret each listener
// asks for (the proxy secret, a sign-in's state, a launcher link's random
// path) are the guards (README, security model).
func LoopbackPeer(c net.Conn) (peer.Owner, error) {
	o, err := peer.TCP(c)
	if errors.Is(err, peer.ErrUnsupported) && runtime.GOOS == "darwin" {
		return peer.Owner{UID: os.Getuid()}, nil
	}
	return o, err
}

// ListenLoopback listens on a free 127.0.0.1 port and accepts only this
// user's connections (LoopbackPeer): the proxy's rule, for the small
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
	return &SameUserListener{Listener: ln, Peer: LoopbackPeer, Log: log, Refusal: refusal, OnRefuse: onRefuse}, nil
}
