package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
)

// isIdle reports whether ch is closed, after letting the bubble settle.
func isIdle(ch <-chan struct{}) bool {
	synctest.Wait()
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func fixed(d time.Duration) func() time.Duration { return func() time.Duration { return d } }

func never() bool { return false }

func TestIdleExitsAfterTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newActivity()
		idle := watchIdle(t.Context(), a, fixed(2*time.Second), never)
		time.Sleep(1999 * time.Millisecond)
		if isIdle(idle) {
			t.Fatal("idle before the limit")
		}
		time.Sleep(time.Millisecond)
		if !isIdle(idle) {
			t.Fatal("not idle at the limit")
		}
	})
}

// Each request starts the idle time again; one in flight (a long-poll, a
// download) keeps the agent however long it runs.
func TestRequestsKeepTheAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newActivity()
		idle := watchIdle(t.Context(), a, fixed(2*time.Second), never)
		for range 5 {
			time.Sleep(1500 * time.Millisecond)
			a.begin()()
		}
		if isIdle(idle) {
			t.Fatal("idle although a request came every 1.5 s")
		}
		end := a.begin()
		time.Sleep(time.Hour)
		if isIdle(idle) {
			t.Fatal("idle while a request runs")
		}
		end()
		end() // a second call changes nothing
		time.Sleep(1999 * time.Millisecond)
		if isIdle(idle) {
			t.Fatal("idle before the limit after the request ended")
		}
		time.Sleep(time.Millisecond)
		if !isIdle(idle) {
			t.Fatal("not idle after the limit")
		}
	})
}

// A sign-in waiting for the user keeps the agent, with no requests at all.
func TestPendingSignInKeepsTheAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newActivity()
		var pending atomic.Bool
		pending.Store(true)
		idle := watchIdle(t.Context(), a, fixed(2*time.Second), pending.Load)
		time.Sleep(10 * time.Minute)
		if isIdle(idle) {
			t.Fatal("idle while a sign-in is pending")
		}
		pending.Store(false)
		time.Sleep(5 * time.Second)
		if !isIdle(idle) {
			t.Fatal("not idle after the sign-in ended")
		}
	})
}

// 0 is never; a reload that turns it on is seen.
func TestIdleExitOffAndTurnedOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newActivity()
		var lim atomic.Int64
		idle := watchIdle(t.Context(), a, func() time.Duration { return time.Duration(lim.Load()) }, never)
		time.Sleep(24 * time.Hour)
		if isIdle(idle) {
			t.Fatal("idle with idle_exit 0")
		}
		lim.Store(int64(2 * time.Second))
		time.Sleep(idleCheckWhenOff)
		if !isIdle(idle) {
			t.Fatal("not idle a minute after idle_exit was set")
		}
	})
}

func TestIdleWatchEndsWithTheAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		idle := watchIdle(ctx, newActivity(), fixed(time.Second), never)
		cancel()
		synctest.Wait() // the watcher goroutine is gone: the bubble would not end otherwise
		if isIdle(idle) {
			t.Fatal("idle reported after the agent ended")
		}
	})
}

// Socket requests count: the daemon wraps its handler table.
func TestSocketRequestsCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newActivity()
		release := make(chan struct{})
		h := a.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		time.Sleep(time.Hour)
		go h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/login/x?wait=60", nil))
		synctest.Wait()
		if got := a.idleFor(time.Now()); got != 0 {
			t.Fatalf("idleFor = %v while a request runs", got)
		}
		close(release)
		synctest.Wait()
		time.Sleep(time.Second)
		if got := a.idleFor(time.Now()); got != time.Second {
			t.Fatalf("idleFor = %v, want 1s after the request ended", got)
		}
	})
}

func TestIdleLimit(t *testing.T) {
	with, _ := config.Parse("c.yaml", []byte("agent:\n  idle_exit: 5m\n"))
	without, _ := config.Parse("c.yaml", []byte(""))
	for _, tc := range []struct {
		name string
		auto bool
		def  time.Duration
		cfg  *config.Config
		want time.Duration
	}{
		{"service or run by hand", false, 30 * time.Minute, with, 0},
		{"autostarted, default", true, 30 * time.Minute, without, 30 * time.Minute},
		{"autostarted, config wins", true, 30 * time.Minute, with, 5 * time.Minute},
		{"autostarted where a service manager runs, default off", true, 0, without, 0},
		{"autostarted, no config yet", true, 30 * time.Minute, nil, 30 * time.Minute},
	} {
		d := &Daemon{opts: Options{Autostarted: tc.auto, IdleExit: tc.def}, cfg: tc.cfg}
		if got := d.idleLimit(); got != tc.want {
			t.Errorf("%s: idleLimit = %v, want %v", tc.name, got, tc.want)
		}
	}
}
