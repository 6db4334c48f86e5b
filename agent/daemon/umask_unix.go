//go:build unix && !linux

package daemon

import "syscall"

func umask077() { syscall.Umask(0o077) }
