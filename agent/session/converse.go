package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kc-agent/kc-agent/ipc"
)

// Backend runs sign-ins: the agent over its socket (*ipc.Client), or a
// Service in this process when no agent runs. Both answer alike.
type Backend interface {
	StartLogin(ctx context.Context, req ipc.LoginRequest) (*ipc.LoginStatus, error)
	LoginStatus(ctx context.Context, id string, wait time.Duration) (*ipc.LoginStatus, error)
	CancelLogin(ctx context.Context, id string) error
	// LaunchLogin is a one-time link to a pending sign-in's page, for a
	// browser opener (whose argv other users can read).
	LaunchLogin(ctx context.Context, id string) (string, error)
}

// Presenter shows a sign-in to the person who asked for it: the terminal
// (cmd/kc-agent); a notebook reads the same ipc.LoginStatus from the
// socket API (clients/python).
type Presenter interface {
	// Show is called once the sign-in started, or was joined: the link,
	// the code and the QR code to show. launch gives a one-time link to
	// hand a browser opener instead of the page's URL.
	Show(st *ipc.LoginStatus, launch func() (string, error))
	// Waiting is called about every second while it is pending.
	Waiting(st *ipc.LoginStatus, left time.Duration)
	// Stop is called when the waiting is over, however it ended.
	Stop()
}

// EndedError is a sign-in that ended without a login: expired, denied,
// cancelled, failed, or given up on.
type EndedError struct {
	Status *ipc.LoginStatus
	Msg    string
	Advice string
}

func (e *EndedError) Error() string { return e.Msg }

// Hint says what to do next.
func (e *EndedError) Hint() string { return e.Advice }

// Converse runs a sign-in with the user to its end: start (or join) it,
// show it, wait at most timeout, and say how it ended. When ctx ends
// first, a sign-in this call started is cancelled (one it joined goes on
// for the others).
func Converse(ctx context.Context, b Backend, req ipc.LoginRequest, p Presenter, timeout time.Duration) (*ipc.LoginStatus, error) {
	st, err := b.StartLogin(ctx, req)
	if err != nil {
		return nil, err
	}
	id := st.ID
	p.Show(st, func() (string, error) { return b.LaunchLogin(ctx, id) })
	defer p.Stop()
	deadline := time.Now().Add(timeout)
	for st.State == ipc.LoginPending {
		left := time.Until(deadline)
		if left <= 0 {
			return st, &EndedError{Status: st, Msg: fmt.Sprintf("gave up waiting for the sign-in after %s", timeout),
				Advice: "it stays open until it expires: `kc-agent status` shows it"}
		}
		next, err := b.LoginStatus(ctx, st.ID, min(left, time.Second))
		if err == nil && ctx.Err() != nil {
			err = ctx.Err() // an in-process backend answers at once when ctx ends
		}
		if err != nil {
			if ctx.Err() == nil {
				return st, err
			}
			if !st.Joined {
				// Ctrl-C: the sign-in this call started ends with it.
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_ = b.CancelLogin(cctx, st.ID)
				cancel()
			}
			return st, &EndedError{Status: st, Msg: "login cancelled"}
		}
		st = next
		if st.State == ipc.LoginPending {
			p.Waiting(st, min(time.Until(deadline), time.Until(st.ExpiresAt)))
		}
	}
	if ctx.Err() != nil && st.State == ipc.LoginCancelled {
		return st, &EndedError{Status: st, Msg: "login cancelled"}
	}
	if st.State != ipc.LoginDone {
		return st, &EndedError{Status: st, Msg: st.Error, Advice: st.Hint}
	}
	if st.Identity == nil {
		return st, errors.New("the sign-in ended without saying who signed in")
	}
	return st, nil
}
