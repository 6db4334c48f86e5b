package tokens

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kc-agent/kc-agent/agent/cleartext"
	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
)

// profile is one login the manager keeps fresh.
type profile struct {
	m    *Manager
	name string
	cfg  config.Profile
	st   store.Store

	sem chan struct{} // held while refreshing: one refresh per profile

	mu     sync.Mutex
	gen    int // bumped by reload: in-flight results of an older gen are dropped
	loaded bool
	// known: this agent has read a login of the profile from the store, or
	// written one. Until then a store it can't reach means "not signed in
	// here" to callers (login_required), not a keychain error.
	known          bool
	rec            store.Record
	state          State
	lastErr        string
	hint           string
	access         map[string]*cached // by scope key; "" is the profile's own scopes
	lastUsed       time.Time
	lastRefresh    time.Time
	nextRefresh    time.Time
	failures       int
	retryAt        time.Time // while degraded: the next attempt
	refreshes      int
	persistPending bool
	persistRetryAt time.Time
	kicked         bool // a background refresh was started from Token
	timer          *time.Timer
	stopped        bool
	// foreign counts the refusals to send the offline token to an issuer
	// port another user listened on (agent/cleartext).
	foreign cleartext.Refusals
	key     keyCache // the login's DPoP key, once loaded (proof.go)
}

type cached struct {
	Access
	// id is the ID token of the same refresh ("" when the scopes lack
	// openid); its expiry comes from its own lifetime.
	id        Access
	issued    time.Time
	refreshAt time.Time
	seq       int // the profile's refresh count when it was issued
}

// anyToken: freshLocked's newerThan when any token will do.
const anyToken = -1

// acquire takes the profile's refresh slot (one refresh at a time), giving
// up when ctx ends; release gives it back.
func (p *profile) acquire(ctx context.Context) bool {
	select {
	case p.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p *profile) release() { <-p.sem }

func (p *profile) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	p.gen++
	if p.timer != nil {
		p.timer.Stop()
	}
}

// freshLocked returns the cached token (the ID token when id is set) when
// it has at least need left,
// judged by the wall clock (timers run late after a laptop sleeps), and
// came from a refresh after the newerThan-th (anyToken: from any).
//
// A need no token can ever meet (60 s of 30 s tokens) becomes half the
// lifetime the provider issues: such a caller gets a token from the first
// half of its life, instead of an error after a refresh grant on every
// call. A need a fresh token can meet is honoured as asked.
func (p *profile) freshLocked(key string, now time.Time, need time.Duration, newerThan int, id bool) (Access, bool) {
	c := p.access[key]
	if c == nil || c.seq <= newerThan {
		return Access{}, false
	}
	a := c.Access
	if id {
		a = c.id
	}
	if a.Token == "" {
		return Access{}, false
	}
	switch lifetime := a.ExpiresAt.Sub(c.issued); {
	case need <= 0:
		need = p.m.schedule().defaultNeed(lifetime)
	case need >= lifetime:
		need = max(lifetime/2, MinServe)
	}
	need = max(need, MinServe)
	if a.ExpiresAt.Sub(now) < need {
		return Access{}, false
	}
	return a, true
}

func (p *profile) loginRequiredLocked() error {
	msg := fmt.Sprintf("profile %q needs a new login", p.name)
	if p.lastErr != "" {
		msg += ": " + p.lastErr
	}
	hint := p.hint
	if hint == "" {
		hint = loginHint(p.name)
	}
	return &Error{Code: CodeLoginRequired, Msg: msg, Hint: hint}
}

// ensureLoaded reads the stored record once. Called with p.sem held.
func (p *profile) ensureLoaded(ctx context.Context, gen int) error {
	p.mu.Lock()
	if p.loaded {
		p.mu.Unlock()
		return nil
	}
	st := p.st
	p.mu.Unlock()
	if st == nil {
		return &Error{Code: CodeConfig, Msg: fmt.Sprintf("profile %q has no usable store", p.name)}
	}
	rec, err := st.Get(ctx, p.name)
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen {
		return errReloaded()
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.loaded = true
		p.state = StateLoggedOut
		p.lastErr = "not logged in"
		return &Error{Code: CodeLoginRequired, Msg: fmt.Sprintf("profile %q is not logged in", p.name), Hint: loginHint(p.name)}
	case err != nil && errors.Is(err, store.ErrUnavailable) && !p.known:
		// Nothing was ever signed in here that this agent knows of: the
		// caller's next step is a sign-in, which says what to fix about
		// the store before it starts. Not loaded: read again next time.
		// The message says why a sign-in will need the store fixed first.
		p.state = StateLoggedOut
		p.lastErr = "not logged in here (" + err.Error() + ")"
		hint := loginHint(p.name)
		var ue *store.UnavailableError
		if errors.As(err, &ue) {
			hint = strings.TrimSuffix(hint, " again") + " once the profile can keep a token: " + ue.Hint()
		}
		p.hint = hint
		return &Error{Code: CodeLoginRequired, Msg: fmt.Sprintf("profile %q is not logged in on this host (%v)", p.name, err), Hint: hint}
	case err != nil:
		p.lastErr = "reading the stored login: " + err.Error()
		var ue *store.UnavailableError
		if errors.As(err, &ue) {
			p.hint = ue.Hint()
		}
		p.degradedLocked()
		p.scheduleLocked()
		return &Error{Code: CodeUnavailable, Msg: p.lastErr, Hint: p.hint}
	}
	if rec.Issuer != p.cfg.Issuer || rec.ClientID != p.cfg.ClientID {
		p.loaded = true
		p.state = StateLoginRequired
		p.lastErr = fmt.Sprintf("the stored login is for %s (client %s), but the profile now names %s (client %s)", rec.Issuer, rec.ClientID, p.cfg.Issuer, p.cfg.ClientID)
		return p.loginRequiredLocked()
	}
	p.rec = rec
	p.loaded = true
	p.known = true
	p.state = StateActive
	p.lastErr, p.hint = "", ""
	return nil
}

// degradedLocked counts a failed attempt and sets when to try again.
func (p *profile) degradedLocked() {
	p.state = StateDegraded
	p.failures++
	p.retryAt = p.m.now().Add(p.m.schedule().backoff(p.failures))
}
