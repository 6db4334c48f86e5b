//go:build linux || darwin

package main

import (
	"path/filepath"
	"syscall"
	"time"

	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// askAgent sends req to the first discovery candidate where a verified
// agent listens, exactly as ipc.NewClient picks it, and returns its whole
// answer. Nothing there, a directory or peer that is not the user's, a
// full listen queue, or a broken connection: askCore, and the core looks
// again and reports. An agent that took the request but did not answer
// within askTimeout: askTimedOut, reported here, as the core would wait as
// long again.
func askAgent(req []byte) ([]byte, string, askResult) {
	cands, err := discovery.Candidates()
	if err != nil {
		return nil, "", askCore
	}
	for i, path := range cands {
		fd, err := dialVerified(path)
		if err == nil {
			defer syscall.Close(fd)
			answer, res := exchange(fd, req, time.Now().Add(askTimeout))
			return answer, path, res
		}
		if _, untrusted := err.(*discovery.UntrustedError); untrusted && i == 0 {
			return nil, path, askCore // the core says whose it is, loudly
		}
	}
	return nil, "", askCore
}

// dialVerified is ipc's dialVerified on a bare file descriptor: the
// directory's owner and mode, a connect that never waits (a full listen
// queue is an error at once, as for the core), then the peer's uid.
func dialVerified(path string) (int, error) {
	if err := discovery.CheckSocketDir(filepath.Dir(path)); err != nil {
		return -1, err
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	syscall.CloseOnExec(fd)
	err = syscall.SetNonblock(fd, true)
	if err == nil {
		err = syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
	}
	if err == nil {
		err = discovery.CheckPeer(path, uintptr(fd))
	}
	if err == nil {
		err = syscall.SetNonblock(fd, false)
	}
	if err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// exchange writes req and reads the answer until its Content-Length is
// there (or the agent closes), all before deadline.
func exchange(fd int, req []byte, deadline time.Time) ([]byte, askResult) {
	for len(req) > 0 {
		if !timeoutUntil(fd, syscall.SO_SNDTIMEO, deadline) {
			return nil, askTimedOut
		}
		n, err := syscall.Write(fd, req)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return nil, askTimedOut
		case err != nil || n <= 0:
			return nil, askCore
		}
		req = req[n:]
	}
	answer := make([]byte, 0, 4096)
	for !answerComplete(answer) {
		if len(answer) == cap(answer) {
			if cap(answer) >= maxAnswer {
				return nil, askCore
			}
			answer = append(answer, make([]byte, cap(answer))...)[:len(answer)]
		}
		if !timeoutUntil(fd, syscall.SO_RCVTIMEO, deadline) {
			return nil, askTimedOut
		}
		n, err := syscall.Read(fd, answer[len(answer):cap(answer)])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return nil, askTimedOut
		case err != nil:
			return nil, askCore
		case n == 0:
			return answer, askOK
		}
		answer = answer[:len(answer)+n]
	}
	return answer, askOK
}

// timeoutUntil sets the socket's send or receive timeout to what is left
// until deadline; false when nothing is left.
func timeoutUntil(fd, opt int, deadline time.Time) bool {
	left := time.Until(deadline)
	if left <= 0 {
		return false
	}
	tv := syscall.NsecToTimeval(left.Nanoseconds())
	return syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, opt, &tv) == nil
}
