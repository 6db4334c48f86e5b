//go:build !windows

package proxy

import (
	"errors"
	"syscall"
)

// addrInUse tells a busy port.
func addrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
