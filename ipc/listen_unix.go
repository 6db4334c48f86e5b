//go:build unix

package ipc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// Listen opens the agent's socket at path: the directory is created 0700
// and verified, a live agent is detected by dialling first, a stale socket
// file is removed, and the socket is made 0600. Every accepted connection
// is checked to come from this same uid.
func Listen(path string, log *slog.Logger) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := discovery.PrepareSocketDir(dir); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is %w; move it away", path, errNotSocket)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("%w (%s)", ErrAgentRunning, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale socket: %w", err)
		}
		log.Info("removed stale socket", "path", path)
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	return &SameUserListener{Listener: ln, Peer: peer.Unix, Log: log,
		Refusal: "refused a socket connection from another user"}, nil
}

var errNotSocket = errors.New("not a socket")

// listenPrivate creates the socket already 0600: there is no moment at
// which another user could connect before the chmod.
func listenPrivate(path string) (net.Listener, error) {
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}
