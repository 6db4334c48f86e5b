//go:build linux || darwin

package main

import (
	"path/filepath"
	"syscall"

	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// askTimeout bounds each socket read and write, as the core's 60 s.
var askTimeout = syscall.Timeval{Sec: 60}

// askAgent sends req to the first discovery candidate where a verified
// agent listens, exactly as ipc.NewClient picks it, and returns the whole
// answer. ok false whenever the core must look (nothing answers, a
// directory or peer that is not the user's, an error or a timeout).
func askAgent(req []byte) ([]byte, bool) {
	cands, err := discovery.Candidates()
	if err != nil {
		return nil, false
	}
	for i, path := range cands {
		fd, err := dialVerified(path)
		if err == nil {
			defer syscall.Close(fd)
			return exchange(fd, req)
		}
		if i == 0 && errorIsUntrusted(err) {
			return nil, false // the core says whose it is, loudly
		}
	}
	return nil, false
}

func errorIsUntrusted(err error) bool {
	_, ok := err.(*discovery.UntrustedError)
	return ok
}

// dialVerified is ipc's dialVerified on a bare file descriptor: the
// directory's owner and mode, a connect, then the peer's uid.
func dialVerified(path string) (int, error) {
	if err := discovery.CheckSocketDir(filepath.Dir(path)); err != nil {
		return -1, err
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	if err := discovery.CheckPeer(path, uintptr(fd)); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// exchange writes req and reads until the agent closes the connection
// (the request says Connection: close).
func exchange(fd int, req []byte) ([]byte, bool) {
	if syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &askTimeout) != nil ||
		syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &askTimeout) != nil {
		return nil, false
	}
	for len(req) > 0 {
		n, err := syscall.Write(fd, req)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return nil, false
		}
		req = req[n:]
	}
	answer := make([]byte, 0, 4096)
	for {
		if len(answer) == cap(answer) {
			if cap(answer) >= maxAnswer {
				return nil, false
			}
			answer = append(answer, make([]byte, cap(answer))...)[:len(answer)]
		}
		n, err := syscall.Read(fd, answer[len(answer):cap(answer)])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, false
		case n == 0:
			return answer, true
		}
		answer = answer[:len(answer)+n]
	}
}
