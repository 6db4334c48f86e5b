// Package sameuser is the listener that accepts only this user's
// connections, before any byte is read: the agent's socket and pipe (ipc),
// the proxy, and a sign-in's loopback listeners (agent/oidc's redirect,
// agent/launcher) all use it.
package sameuser

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"runtime"

	"github.com/kc-agent/kc-agent/internal/tcpowner"
)

// Listener drops, before any byte is read, every connection whose
// peer is not this process's user, and logs the refusal. The socket API
// (peer credentials, or the pipe client's process on Windows) and the
// proxy (internal/tcpowner) each supply their own way of finding the peer.
type Listener struct {
	net.Listener
	Peer    func(net.Conn) (tcpowner.Owner, error)
	Log     *slog.Logger
	Refusal string // the log message for a refused connection
	// OnRefuse, when set, is called for each refused connection.
	OnRefuse func()
}

func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		o, err := l.Peer(c)
		if err != nil || !o.Self() {
			errText := ""
			if err != nil {
				errText = err.Error()
			}
			if o.SID != "" || runtime.GOOS == "windows" {
				l.Log.Warn(l.Refusal, "peer", o.String(), "peer_pid", o.PID, "err", errText)
			} else {
				l.Log.Warn(l.Refusal, "peer_uid", o.UID, "agent_uid", os.Getuid(), "err", errText)
			}
			if l.OnRefuse != nil {
				l.OnRefuse()
			}
			c.Close()
			continue
		}
		return c, nil
	}
}

// LoopbackPeer finds the user behind an accepted loopback TCP connection
// (a uid on Unix, the owning process's SID on Windows). A caller whose
// owner can't be found is refused, except on macOS, which shows no socket
// owners: there the loopback-only listener and the secret each listener
// asks for (the proxy secret, a sign-in's state, a launcher link's random
// path) are the guards (README, security model).
func LoopbackPeer(c net.Conn) (tcpowner.Owner, error) {
	o, err := tcpowner.Peer(c)
	if errors.Is(err, tcpowner.ErrUnsupported) && runtime.GOOS == "darwin" {
		return tcpowner.Owner{UID: os.Getuid()}, nil
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
	return &Listener{Listener: ln, Peer: LoopbackPeer, Log: log, Refusal: refusal, OnRefuse: onRefuse}, nil
}
