package daemon

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/kc-agent/kc-agent/ipc"
)

// activity is what keeps an autostarted agent alive: requests in flight on
// the socket or the proxy (a long-poll, a download, a tunnel), and when the
// last one ended.
type activity struct {
	mu       sync.Mutex
	inflight int
	last     time.Time
}

func newActivity() *activity { return &activity{last: time.Now()} }

// begin marks one request as started; the returned func marks it ended
// (once, however often it is called).
func (a *activity) begin() (end func()) {
	a.mu.Lock()
	a.inflight++
	a.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.inflight--
			a.last = time.Now()
			a.mu.Unlock()
		})
	}
}

// touch counts as activity now (a pending sign-in).
func (a *activity) touch() {
	a.mu.Lock()
	a.last = time.Now()
	a.mu.Unlock()
}

// idleFor is how long nothing has happened; 0 while a request runs.
func (a *activity) idleFor(now time.Time) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inflight > 0 {
		return 0
	}
	return now.Sub(a.last)
}

// wrap counts every request h serves.
func (a *activity) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer a.begin()()
		h.ServeHTTP(w, r)
	})
}

// idleCheckWhenOff is how often a loop whose limit is 0 (never) looks
// again: a config reload may turn it on.
const idleCheckWhenOff = time.Minute

// watchIdle closes the returned channel once nothing has happened for
// limit() (read again at every check: the config may change it; 0 is
// never). busy reports work the requests don't show, such as a sign-in
// waiting for the user: while it lasts, the agent is not idle.
func watchIdle(ctx context.Context, a *activity, limit func() time.Duration, busy func() bool) <-chan struct{} {
	idle := make(chan struct{})
	go func() {
		t := time.NewTimer(idleCheckWhenOff)
		defer t.Stop()
		for {
			wait := idleCheckWhenOff
			if lim := limit(); lim > 0 {
				if busy() {
					a.touch()
				}
				idleFor := a.idleFor(time.Now())
				if idleFor >= lim {
					close(idle)
					return
				}
				wait = lim - idleFor
				if idleFor == 0 {
					wait = lim // a request runs: look again after a whole limit
				}
			}
			t.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return idle
}

// idleLimit is how long this agent may be idle: only an autostarted agent
// ends when idle, after the config's agent.idle_exit, else the default the
// command chose (Options.IdleExit).
func (d *Daemon) idleLimit() time.Duration {
	if !d.opts.Autostarted {
		return 0
	}
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	if lim, ok := cfg.IdleExit(); ok {
		return lim
	}
	return d.opts.IdleExit
}

// signInPending tells whether a sign-in waits for the user: the agent must
// be there when the browser's redirect or the device approval comes.
func (d *Daemon) signInPending() bool {
	for _, s := range d.logins.SignIns() {
		if s.State == ipc.LoginPending {
			return true
		}
	}
	return false
}

// stepDown ends an idle agent in the order that lets the next one start
// at once: clients see "stopping" in the lock (a new agent waits for it
// rather than refuse), the socket closes (a client now autostarts), then
// sign-ins, proxy and refreshes end, and only then (Run's defer) is the
// lock released.
func (d *Daemon) stepDown(srv *http.Server, lock *ipc.Lock) {
	lock.SetRole("stopping")
	ipc.Shutdown(srv)
	d.logins.Close()
	d.stopProxy()
	d.mgr.Close()
}

// idleText is the idle limit for status: empty when the agent never ends
// by itself.
func idleText(lim time.Duration) string {
	if lim <= 0 {
		return ""
	}
	return lim.String()
}
