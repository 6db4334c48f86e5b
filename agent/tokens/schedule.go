package tokens

import (
	"context"
	"math/rand/v2"
	"time"
)

// Schedule holds every number that shapes when a profile refreshes.
type Schedule struct {
	// RefreshAt is the fraction of an access token's lifetime after which
	// it is refreshed ahead of expiry, plus up to RefreshJitter more.
	RefreshAt     float64
	RefreshJitter float64
	// HotWindow: a profile asked for within this window is refreshed ahead.
	HotWindow time.Duration
	// KeepAlive: an idle profile is still refreshed this often, so the
	// offline session never reaches Keycloak's Offline Session Idle.
	KeepAlive time.Duration
	// BackoffBase and BackoffMax bound retries after transient errors.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// PersistRetry is how soon a rotated token that could not be saved is
	// saved again.
	PersistRetry time.Duration
	// DefaultMinValid is the remaining life a caller that names no
	// min_valid gets, at most (defaultNeed).
	DefaultMinValid time.Duration
}

// DefaultSchedule is the production policy.
var DefaultSchedule = Schedule{
	RefreshAt: 0.75, RefreshJitter: 0.05,
	HotWindow: 15 * time.Minute, KeepAlive: 24 * time.Hour,
	BackoffBase: 2 * time.Second, BackoffMax: 5 * time.Minute,
	PersistRetry: 8 * time.Second, DefaultMinValid: time.Minute,
}

// defaultNeed is the least remaining life served to a caller that named
// no min_valid: DefaultMinValid, but never more than what a token has left
// at its earliest refresh point (a fifth of its life by default, so at
// most half of it), so such callers never bring a refresh forward: with
// 60 s tokens a fixed 60 s (or even 30 s) would refresh on nearly every
// call. Never below MinServe.
func (s Schedule) defaultNeed(lifetime time.Duration) time.Duration {
	tail := time.Duration(float64(lifetime) * (1 - s.RefreshAt - s.RefreshJitter))
	return max(min(s.DefaultMinValid, tail, lifetime/2), MinServe)
}

// refreshPoint is when a token issued at now, living lifetime, is due for
// its refresh ahead of expiry.
func (s Schedule) refreshPoint(now time.Time, lifetime time.Duration) time.Time {
	frac := s.RefreshAt + rand.Float64()*s.RefreshJitter
	return now.Add(time.Duration(float64(lifetime) * frac))
}

// backoff is the wait before retry number failures (1, 2, ...), jittered.
func (s Schedule) backoff(failures int) time.Duration {
	d := s.BackoffBase << min(max(failures-1, 0), 20)
	if d > s.BackoffMax || d <= 0 {
		d = s.BackoffMax
	}
	return jitter(d)
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + rand.Float64()*0.2))
}

// refreshDueLocked is when the profile's next refresh is due: the one
// place that decides it. Zero means none is (logged out, login required,
// not loaded yet). While hot, ahead of expiry; while cold, the daily
// keep-alive; while degraded, after the backoff.
func (p *profile) refreshDueLocked(now time.Time, s Schedule) time.Time {
	switch {
	case p.stopped:
		return time.Time{}
	case p.state == StateDegraded:
		return p.retryAt
	case !p.loaded || p.state != StateActive:
		return time.Time{}
	}
	c := p.access[""]
	switch hot := now.Sub(p.lastUsed) <= s.HotWindow; {
	case hot && c != nil:
		return c.refreshAt
	case hot:
		return now // used, but no token yet for its own scopes: fetch now
	default:
		return p.keepAliveBaseLocked().Add(s.KeepAlive)
	}
}

// keepAliveBaseLocked is when the offline session was last used: the last
// refresh, or, before the first one, when the token was saved.
func (p *profile) keepAliveBaseLocked() time.Time {
	if !p.lastRefresh.IsZero() {
		return p.lastRefresh
	}
	return p.rec.SavedAt
}

// scheduleLocked sets the profile's one timer: for the next refresh, or
// for the retry of a failed save when that comes first.
func (p *profile) scheduleLocked() {
	if p.timer != nil {
		p.timer.Stop()
	}
	p.nextRefresh = time.Time{}
	now := p.m.now()
	at := p.refreshDueLocked(now, p.m.schedule())
	if p.persistPending && !p.stopped && (at.IsZero() || p.persistRetryAt.Before(at)) {
		at = p.persistRetryAt
	}
	if at.IsZero() {
		return
	}
	p.nextRefresh = at
	gen := p.gen
	p.timer = time.AfterFunc(max(at.Sub(now), 0), func() { p.background(gen) })
}

// background is the timer's work: a refresh when one is due, a retry of a
// failed save, or just a new timer (it fired early, or the profile cooled).
func (p *profile) background(gen int) {
	p.m.mu.Lock()
	if p.m.closed {
		p.m.mu.Unlock()
		return
	}
	p.m.wg.Add(1)
	p.m.mu.Unlock()
	defer p.m.wg.Done()

	ctx, cancel := context.WithTimeout(context.Background(), RefreshTimeout)
	defer cancel()
	if !p.acquire(ctx) {
		return
	}
	defer p.release()

	p.mu.Lock()
	p.kicked = false
	if gen != p.gen || p.stopped {
		p.mu.Unlock()
		return
	}
	now := p.m.now()
	due := p.refreshDueLocked(now, p.m.schedule())
	refreshDue := !due.IsZero() && !now.Before(due)
	saveDue := p.persistPending && !now.Before(p.persistRetryAt)
	loaded := p.loaded
	p.mu.Unlock()

	if !loaded {
		if err := p.ensureLoaded(ctx, gen); err != nil {
			return
		}
	}
	if refreshDue {
		_ = p.refresh(ctx, gen, "", nil)
		return
	}
	if saveDue {
		p.retrySave(ctx, gen)
	}
	p.mu.Lock()
	if gen == p.gen {
		p.scheduleLocked()
	}
	p.mu.Unlock()
}
