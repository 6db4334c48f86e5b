package proxy

import (
	"errors"
	"fmt"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/ipc"
)

// Waiting for a taken address. On a shared host nobody restarts a
// notebook user's agent by hand, so a proxy whose address is held by
// someone else (a neighbour's fixed port, a squatter, a server of the
// user's own) must not stay off until the next restart: it tries again in
// the background and starts once the address is free. Status says so
// meanwhile, and clients that check (env, exec) refuse the address, which
// the agent does not hold.

// The wait between attempts doubles from retryMin to retryMax: a bind is
// cheap, and a freed address should be taken before the user notices.
const (
	retryMin = 500 * time.Millisecond
	retryMax = 8 * time.Second
)

// busyError is a listen address in use; the proxy waits for it.
type busyError struct {
	msg string
	err error
}

func (e *busyError) Error() string { return e.msg }
func (e *busyError) Unwrap() error { return e.err }

// retryState is the wait for a taken address, while it lasts.
type retryState struct {
	err   error     // the last attempt's
	next  time.Time // when the next attempt is
	since time.Time
}

// StartRetrying is Start for an agent nobody restarts by hand: when an
// address the proxy needs is taken, it returns nil and keeps trying in the
// background (Status says so) until the address is free or Close. Other
// errors (an address that is not loopback) are returned.
func (p *Proxy) StartRetrying() error {
	err := p.Start()
	var busy *busyError
	if err == nil || !errors.As(err, &busy) {
		return err
	}
	now := time.Now()
	p.mu.Lock()
	p.retry = &retryState{err: err, next: now.Add(retryMin), since: now}
	p.mu.Unlock()
	p.log.Warn("proxy address taken; the proxy starts once it is free", "err", err.Error())
	go p.retryLoop(now)
	return nil
}

// retryLoop tries the live table again, less often as time goes by, until
// it is applied (here or by a Reconfigure) or the proxy closes.
func (p *Proxy) retryLoop(since time.Time) {
	wait := retryMin
	for {
		t := time.NewTimer(wait)
		select {
		case <-p.closing:
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
		p.applyMu.Lock() // a Reconfigure in between would be undone
		err := p.apply(p.table.Load())
		p.applyMu.Unlock()
		p.mu.Lock()
		r := p.retry
		if r == nil || err == nil { // started, here or by a Reconfigure
			p.retry = nil
			addr := p.addr
			p.mu.Unlock()
			if err == nil {
				p.log.Info("proxy started: its address is free now", "addr", addr, "waited", time.Since(since).Round(time.Second).String())
			}
			return
		}
		changed := r.err.Error() != err.Error()
		r.err, r.next = err, time.Now().Add(wait)
		p.mu.Unlock()
		if changed {
			p.log.Warn("proxy still waiting for its address", "err", err.Error())
		}
	}
}

// waitFor tells, when a Reconfigure's table can not be applied because an
// address is taken while the proxy is waiting anyway, that the new table
// becomes the one the wait is for; the change is then not an error.
func (p *Proxy) waitFor(t *table, err error) bool {
	var busy *busyError
	if !errors.As(err, &busy) {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retry == nil {
		return false
	}
	p.retry.err = err
	p.table.Store(t)
	return true
}

// retryStatus fills in st while the proxy waits for its address: what
// holds it, that the wait goes on by itself, and the right thing to do.
func (p *Proxy) retryStatus(st *ipc.ProxyStatus, cfg *config.Config) {
	p.mu.Lock()
	r := p.retry
	var err error
	var next, since time.Time
	if r != nil {
		err, next, since = r.err, r.next, r.since
	}
	p.mu.Unlock()
	if r == nil {
		return
	}
	st.Retrying = true
	st.Error = fmt.Sprintf("%v; waiting since %s, next try in %s", err, since.Format(time.TimeOnly),
		max(time.Until(next), 0).Round(100*time.Millisecond))
	st.Hint = waitHint(cfg)
}

// waitHint is what a user can do about a taken address; the proxy starts
// by itself once it is free either way.
func waitHint(cfg *config.Config) string {
	return "the proxy starts by itself once the address is free; " + cfg.ListenAdvice()
}
