package ipc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// The one-agent lock. The running agent holds an exclusive lock on a file
// named by LockPath for as long as it runs; the kernel drops it when the
// process dies, so a crash never blocks the next agent. login and logout
// hold the same lock around their store writes when no agent runs, so an
// agent can not refresh a login that is being replaced.

// Lock is a held lock; Release gives it back.
type Lock struct {
	f      *os.File
	Path   string
	socket string
}

// LockHolder describes who holds a lock, from what the holder wrote into it.
type LockHolder struct {
	PID    int
	Role   string // "agent", "login", "logout"
	Socket string
}

// ErrLocked means another process holds the lock.
var ErrLocked = errors.New("the kc-agent lock is held by another process")

// LockedError names the holder.
type LockedError struct {
	Path   string
	Holder LockHolder
}

func (e *LockedError) Error() string {
	who := "another process"
	if e.Holder.PID > 0 {
		who = fmt.Sprintf("pid %d", e.Holder.PID)
	}
	if e.Holder.Role == "agent" {
		msg := fmt.Sprintf("another kc-agent (%s) already runs for this user", who)
		if e.Holder.Socket != "" {
			msg += " on " + e.Holder.Socket
		}
		return msg + " (lock " + e.Path + ")"
	}
	return fmt.Sprintf("kc-agent %s (%s) holds the lock %s", e.Holder.Role, who, e.Path)
}
func (e *LockedError) Unwrap() error { return ErrLocked }

// Hint says what to do.
func (e *LockedError) Hint() string {
	if e.Holder.Role == "agent" {
		return "one agent per user: use the running one (`kc-agent status`), or stop it first (`kc-agent stop`)"
	}
	return "wait for it to finish and try again"
}

// TryLock takes the lock at path without waiting, creating its 0700
// directory when missing (which must then be this user's own).
func TryLock(path, role, socket string) (*Lock, error) {
	if err := discovery.PrepareSocketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, &LockedError{Path: path, Holder: ReadLockHolder(path)}
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	l := &Lock{f: f, Path: path, socket: socket}
	l.SetRole(role)
	return l, nil
}

// SetRole rewrites what the lock says of its holder. An agent that is
// shutting down says "stopping": WaitLock waits for it rather than
// refuse, so a client that autostarts during the shutdown gets the next
// agent, not an error.
func (l *Lock) SetRole(role string) {
	if l == nil || l.f == nil {
		return
	}
	l.f.Truncate(0)
	l.f.WriteAt([]byte(fmt.Sprintf("pid=%d\nrole=%s\nsocket=%s\n", os.Getpid(), role, l.socket)), 0)
}

// WaitLock is TryLock, retried until wait has passed while the holder is
// not an agent (a login writing the store holds it for a moment).
func WaitLock(path, role, socket string, wait time.Duration) (*Lock, error) {
	deadline := time.Now().Add(wait)
	for {
		l, err := TryLock(path, role, socket)
		var le *LockedError
		if err == nil || !errors.As(err, &le) || le.Holder.Role == "agent" || time.Now().After(deadline) {
			return l, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Release gives the lock back.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Truncate(0)
	unlockFile(l.f)
	l.f.Close()
	l.f = nil
}

// ReadLockHolder reads what the holder of the lock at path wrote.
func ReadLockHolder(path string) LockHolder {
	var h LockHolder
	data, err := os.ReadFile(path)
	if err != nil {
		return h
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "pid":
			h.PID, _ = strconv.Atoi(v)
		case "role":
			h.Role = v
		case "socket":
			h.Socket = v
		}
	}
	return h
}
