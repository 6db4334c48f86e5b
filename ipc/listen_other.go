//go:build !unix && !windows

package ipc

import (
	"errors"
	"log/slog"
	"net"
	"runtime"
)

// Listen: this system has neither Unix sockets with peer credentials nor
// named pipes.
func Listen(path string, log *slog.Logger) (net.Listener, error) {
	return nil, errors.New("kc-agent can not serve its socket API on " + runtime.GOOS)
}
