// Package sameuser is the listener that accepts only this user's
// connections, before any byte is read: the agent's socket and pipe (ipc),
// the proxy, and a sign-in's loopback listeners (agent/oidc's redirect,
// agent/launcher) all use it.
package sameuser

import (
	"log/slog"
	"net"
	"os"
	"runtime"

	"github.com/kc-agent/kc-agent/internal/peer"
)

// Listener drops, before any byte is read, every connection whose
// peer is not this process's user, and logs the refusal. The socket API
// (peer credentials, or the pipe client's process on Windows) and the
// proxy (internal/peer) each supply their own way of finding the peer.
type Listener struct {
	net.Listener
	Peer    func(net.Conn) (peer.Owner, error)
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
	return &Listener{Listener: ln, Peer: peer.Loopback, Log: log, Refusal: refusal, OnRefuse: onRefuse}, nil
}
