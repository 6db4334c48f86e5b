package proxy

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// addrInUse tells a busy port: Winsock says WSAEADDRINUSE (10048), which
// syscall.EADDRINUSE, an invented Errno on Windows, never matches.
func addrInUse(err error) bool {
	return errors.Is(err, windows.WSAEADDRINUSE) || errors.Is(err, syscall.EADDRINUSE)
}
