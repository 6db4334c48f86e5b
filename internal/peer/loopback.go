package peer

import (
	"errors"
	"net"
	"os"
	"runtime"
)

// Loopback finds the user behind an accepted loopback TCP connection (a
// uid on Unix, the owning process's SID on Windows). A caller whose owner
// can't be found is refused, except on macOS, which shows no socket
// owners: there the loopback-only listener and the secret each listener
// asks for (the proxy secret, a sign-in's state, a launcher link's random
// path) are the guards (README, security model).
func Loopback(c net.Conn) (Owner, error) {
	o, err := TCP(c)
	if errors.Is(err, ErrUnsupported) && runtime.GOOS == "darwin" {
		return Owner{UID: os.Getuid()}, nil
	}
	return o, err
}
