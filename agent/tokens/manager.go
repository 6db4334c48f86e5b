// Package tokens owns the offline tokens in the daemon and keeps access
// tokens fresh: refresh ahead of expiry, one refresh per profile at a time,
// rotation-safe persistence, backoff on trouble, and a daily keep-alive.
package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/ipc"
)

const (
	// MinServe: a token with less life left than this is never handed out.
	MinServe = 5 * time.Second
	// RefreshTimeout bounds one background refresh, store write included.
	RefreshTimeout = 45 * time.Second
)

// Schedule holds the timing policy.
type Schedule struct {
	// HotWindow: a profile asked for within this window is refreshed ahead.
	HotWindow time.Duration
	// KeepAlive: an idle profile is still refreshed this often, so the
	// offline session never reaches Keycloak's Offline Session Idle.
	KeepAlive time.Duration
	// BackoffBase and BackoffMax bound retries after transient errors.
	BackoffBase time.Duration
	BackoffMax  time.Duration
}

// DefaultSchedule is the production policy.
var DefaultSchedule = Schedule{HotWindow: 15 * time.Minute, KeepAlive: 24 * time.Hour, BackoffBase: 2 * time.Second, BackoffMax: 5 * time.Minute}

// Refresher is the provider side of a refresh (oidc.Client).
type Refresher interface {
	Refresh(ctx context.Context, refreshToken string, scopes []string) (*oidc.Token, error)
}

// Access is an access token handed to a caller.
type Access struct {
	Token     string
	Type      string
	ExpiresAt time.Time
}

// String never shows the token.
func (a Access) String() string { return "Access{expires_at=" + a.ExpiresAt.Format(time.RFC3339) + "}" }

// Error is a manager error with the socket API's code.
type Error struct {
	Code string // ipc.Code*
	Msg  string
	Hint string
}

func (e *Error) Error() string { return e.Msg }

// Manager serves access tokens for every configured profile.
type Manager struct {
	log *slog.Logger
	// Seams, replaced by tests.
	Now       func() time.Time
	NewClient func(ctx context.Context, issuer, clientID string) (Refresher, error)
	StoreFor  func(config.Profile) (store.Store, error)

	sched atomic.Pointer[Schedule] // read under profile locks: never behind m.mu

	mu       sync.Mutex
	profiles map[string]*profile
	closed   bool
	wg       sync.WaitGroup
}

// NewManager returns a manager with the real provider and stores.
func NewManager(log *slog.Logger) *Manager {
	m := &Manager{
		log: log,
		Now: time.Now,
		NewClient: func(ctx context.Context, issuer, clientID string) (Refresher, error) {
			return oidc.New(ctx, issuer, clientID)
		},
		StoreFor: func(p config.Profile) (store.Store, error) { return store.ForProfile(p, nil) },
		profiles: map[string]*profile{},
	}
	m.SetSchedule(DefaultSchedule)
	return m
}

// SetSchedule changes the timing policy (tests use short ones).
func (m *Manager) SetSchedule(s Schedule) { m.sched.Store(&s) }

func (m *Manager) schedule() Schedule { return *m.sched.Load() }

func (m *Manager) now() time.Time { return m.Now().Round(0) } // wall clock only

type cached struct {
	Access
	issued    time.Time
	refreshAt time.Time
}

type profile struct {
	m    *Manager
	name string
	cfg  config.Profile
	st   store.Store

	sem chan struct{} // held while refreshing: one refresh per profile

	mu             sync.Mutex
	gen            int // bumped by reload: in-flight results of an older gen are dropped
	loaded         bool
	rec            store.Record
	storedRT       string // the refresh token known to be in the store
	state          string
	lastErr        string
	hint           string
	access         map[string]*cached // by scope key; "" is the profile's own scopes
	lastUsed       time.Time
	lastRefresh    time.Time
	nextRefresh    time.Time
	failures       int
	refreshes      int
	persistPending bool
	kicked         bool // a background refresh was started from Token
	timer          *time.Timer
	stopped        bool
}

func scopeKey(scopes []string) string {
	s := slices.Clone(scopes)
	sort.Strings(s)
	return strings.Join(slices.Compact(s), " ")
}

// SetConfig applies a (re)loaded configuration: new profiles are added,
// changed ones re-initialised, removed ones dropped.
func (m *Manager) SetConfig(cfg *config.Config) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, p := range m.profiles {
		np, ok := cfg.Profile(name)
		if ok && equalProfile(np, p.cfg) {
			continue
		}
		p.stop()
		delete(m.profiles, name)
		if !ok {
			m.log.Info("profile removed", "profile", name)
		} else {
			m.log.Info("profile changed; starting it afresh", "profile", name)
		}
	}
	for _, name := range cfg.ProfileNames() {
		if _, ok := m.profiles[name]; ok {
			continue
		}
		pc, _ := cfg.Profile(name)
		p := &profile{m: m, name: name, cfg: pc, sem: make(chan struct{}, 1), access: map[string]*cached{}, state: ipc.StateLoggedOut}
		st, err := m.StoreFor(pc)
		if err != nil {
			p.lastErr = err.Error()
		}
		p.st = st
		m.profiles[name] = p
		m.goLoad(p)
	}
}

func equalProfile(a, b config.Profile) bool {
	return a.Issuer == b.Issuer && a.ClientID == b.ClientID && a.Store == b.Store && slices.Equal(a.Scopes, b.Scopes)
}

// goLoad reads the stored login in the background, so a slow keychain
// never blocks status or other profiles.
func (m *Manager) goLoad(p *profile) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), RefreshTimeout)
		defer cancel()
		if !p.acquire(ctx) {
			return
		}
		defer p.release()
		p.mu.Lock()
		gen := p.gen
		p.mu.Unlock()
		p.ensureLoaded(ctx, gen)
		p.mu.Lock()
		p.scheduleLocked()
		p.mu.Unlock()
	}()
}

// Reload forgets what the manager knows of a profile's login ("" for all)
// and reads the store again: the CLI calls it after login and logout.
func (m *Manager) Reload(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if name != "" {
		if _, ok := m.profiles[name]; !ok {
			return &Error{Code: ipc.CodeUnknown, Msg: fmt.Sprintf("no profile %q in the agent's config", name)}
		}
	}
	for n, p := range m.profiles {
		if name != "" && n != name {
			continue
		}
		p.mu.Lock()
		p.gen++
		p.loaded = false
		p.rec = store.Record{}
		p.access = map[string]*cached{}
		p.state = ipc.StateLoggedOut
		p.lastErr, p.hint = "", ""
		p.failures = 0
		p.persistPending = false
		if p.timer != nil {
			p.timer.Stop()
		}
		p.mu.Unlock()
		m.goLoad(p)
	}
	return nil
}

// Close stops all timers and waits for background work.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for _, p := range m.profiles {
		p.stop()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

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

func (m *Manager) profile(name string) (*profile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.profiles[name]
	if !ok {
		return nil, &Error{Code: ipc.CodeUnknown, Msg: fmt.Sprintf("no profile %q is configured", name),
			Hint: fmt.Sprintf("run `kc-agent login --profile %s <issuer-url>`", name)}
	}
	return p, nil
}

// Request asks for an access token.
type Request struct {
	Profile string
	// Scopes narrow the token; nil means the profile's own scopes.
	Scopes []string
	// MinValid is the least remaining lifetime accepted (never less than
	// MinServe); a shorter-lived cached token is refreshed first.
	MinValid time.Duration
	// Force asks for a token issued after the request arrived (the caller's
	// token was refused). Concurrent forced requests share one refresh.
	Force bool
}

// Token returns an access token for the request's profile.
func (m *Manager) Token(ctx context.Context, req Request) (Access, error) {
	p, err := m.profile(req.Profile)
	if err != nil {
		return Access{}, err
	}
	scopes := req.Scopes
	key := scopeKey(scopes)
	if key == scopeKey(p.cfg.Scopes) {
		key = ""
	}
	need := max(req.MinValid, MinServe)
	var issuedAfter time.Time
	if req.Force {
		issuedAfter = m.now()
	}

	sched := m.schedule()
	p.mu.Lock()
	now := p.m.now()
	wasCold := now.Sub(p.lastUsed) > sched.HotWindow
	p.lastUsed = now
	if wasCold {
		p.scheduleLocked() // from daily keep-alive to refresh-ahead
	}
	if a, ok := p.freshLocked(key, now, need, issuedAfter); ok {
		// Past its refresh point (the timer ran late, e.g. after a laptop
		// sleep): serve this one, refresh behind the caller's back.
		if c := p.access[""]; key == "" && c != nil && !now.Before(c.refreshAt) && !p.kicked {
			p.kicked = true
			go p.background(p.gen)
		}
		p.mu.Unlock()
		return a, nil
	}
	if p.loaded && p.state == ipc.StateLoginRequired {
		err := p.loginRequiredLocked()
		p.mu.Unlock()
		return Access{}, err
	}
	p.mu.Unlock()

	// Slow path: one refresh at a time. Whoever waited behind another
	// refresh finds a fresh token when it gets the semaphore.
	if !p.acquire(ctx) {
		return Access{}, &Error{Code: ipc.CodeUnavailable, Msg: "gave up waiting for a token refresh: " + ctx.Err().Error()}
	}
	defer p.release()

	p.mu.Lock()
	now = p.m.now()
	if a, ok := p.freshLocked(key, now, need, issuedAfter); ok {
		p.mu.Unlock()
		return a, nil
	}
	gen := p.gen
	p.mu.Unlock()

	if err := p.ensureLoaded(ctx, gen); err != nil {
		return Access{}, err
	}
	refreshScopes := scopes
	if key == "" {
		refreshScopes = nil
	}
	if err := p.refresh(ctx, gen, key, refreshScopes); err != nil {
		// Degraded: the cached token is still served while it lasts.
		p.mu.Lock()
		defer p.mu.Unlock()
		if a, ok := p.freshLocked(key, p.m.now(), need, time.Time{}); ok && !req.Force {
			return a, nil
		}
		return Access{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.freshLocked(key, p.m.now(), need, time.Time{}); ok {
		return a, nil
	}
	return Access{}, &Error{Code: ipc.CodeUnavailable,
		Msg:  fmt.Sprintf("the identity provider issues tokens that live less than %s", MinServe),
		Hint: "ask the Keycloak admin for a longer access token lifespan"}
}

// freshLocked returns the cached token when it has at least need left,
// judged by the wall clock (timers run late after a laptop sleeps), and was
// issued no earlier than issuedAfter.
//
// need is capped at half the lifetime the provider issues: a caller asking
// for more than a token can ever have (60 s of 30 s tokens) gets a token
// from the second half of its life at worst, instead of an error or a
// refresh grant on every call.
func (p *profile) freshLocked(key string, now time.Time, need time.Duration, issuedAfter time.Time) (Access, bool) {
	c := p.access[key]
	if c == nil || c.issued.Before(issuedAfter) {
		return Access{}, false
	}
	if lifetime := c.ExpiresAt.Sub(c.issued); need > lifetime/2 {
		need = max(lifetime/2, MinServe)
	}
	if c.ExpiresAt.Sub(now) < need {
		return Access{}, false
	}
	return c.Access, true
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
	return &Error{Code: ipc.CodeLoginRequired, Msg: msg, Hint: hint}
}

func loginHint(name string) string {
	if name == config.DefaultProfile {
		return "run `kc-agent login` to sign in again"
	}
	return fmt.Sprintf("run `kc-agent login --profile %s` to sign in again", name)
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
		return &Error{Code: ipc.CodeConfig, Msg: fmt.Sprintf("profile %q has no usable store", p.name)}
	}
	rec, err := st.Get(ctx, p.name)
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen {
		return &Error{Code: ipc.CodeUnavailable, Msg: "the profile was reloaded; try again"}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.loaded = true
		p.state = ipc.StateLoggedOut
		p.lastErr = "not logged in"
		return &Error{Code: ipc.CodeLoginRequired, Msg: fmt.Sprintf("profile %q is not logged in", p.name), Hint: loginHint(p.name)}
	case err != nil:
		p.state = ipc.StateDegraded
		p.lastErr = "reading the stored login: " + err.Error()
		var ue *store.UnavailableError
		if errors.As(err, &ue) {
			p.hint = ue.Hint()
		}
		p.failures++
		p.scheduleLocked()
		return &Error{Code: ipc.CodeUnavailable, Msg: p.lastErr, Hint: p.hint}
	}
	if rec.Issuer != p.cfg.Issuer || rec.ClientID != p.cfg.ClientID {
		p.loaded = true
		p.state = ipc.StateLoginRequired
		p.lastErr = fmt.Sprintf("the stored login is for %s (client %s), but the profile now names %s (client %s)", rec.Issuer, rec.ClientID, p.cfg.Issuer, p.cfg.ClientID)
		return p.loginRequiredLocked()
	}
	p.rec = rec
	p.storedRT = rec.RefreshToken
	p.loaded = true
	p.state = ipc.StateActive
	p.lastErr, p.hint = "", ""
	return nil
}

// saveRotated writes a rotated record, unless the store no longer holds the
// token this agent last saw there: then a new login (or another process)
// replaced it, and overwriting would throw that login away.
func (p *profile) saveRotated(ctx context.Context, st store.Store, rec store.Record, storedRT string) (replaced bool, err error) {
	if cur, err := st.Get(ctx, p.name); err == nil && cur.RefreshToken != storedRT {
		return true, nil
	} else if errors.Is(err, store.ErrNotFound) {
		return true, nil // logged out meanwhile
	}
	return false, st.Put(ctx, p.name, rec)
}

// replacedLocked drops what the agent knows of the login after the store
// changed under it, and reads the store again.
func (p *profile) replacedLocked() error {
	p.m.log.Info("the stored login changed (a new login or logout); reloading it", "profile", p.name)
	p.gen++
	p.loaded = false
	p.rec = store.Record{}
	p.access = map[string]*cached{}
	p.persistPending = false
	p.m.goLoad(p)
	return &Error{Code: ipc.CodeUnavailable, Msg: "the login changed during a refresh; try again"}
}

// refresh runs one refresh grant. Called with p.sem held. The new offline
// token is written to the store before the new access token is published,
// and the old one is never used again.
func (p *profile) refresh(ctx context.Context, gen int, key string, scopes []string) error {
	p.mu.Lock()
	rec := p.rec
	st := p.st
	storedRT := p.storedRT
	p.mu.Unlock()
	if rec.RefreshToken == "" {
		return &Error{Code: ipc.CodeLoginRequired, Msg: fmt.Sprintf("profile %q is not logged in", p.name), Hint: loginHint(p.name)}
	}
	// Defence in depth against a second refresher (an older agent, a
	// script): with rotation, refreshing with a token someone else already
	// replaced ends the session. Read the store first and follow it when it
	// holds a newer token than the one this agent saved.
	if st != nil {
		cur, err := st.Get(ctx, p.name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			p.mu.Lock()
			defer p.mu.Unlock()
			if gen != p.gen {
				return &Error{Code: ipc.CodeUnavailable, Msg: "the profile was reloaded during a refresh; try again"}
			}
			return p.replacedLocked()
		case err == nil && cur.RefreshToken != storedRT && cur.RefreshToken != rec.RefreshToken:
			if cur.Issuer != p.cfg.Issuer || cur.ClientID != p.cfg.ClientID {
				p.mu.Lock()
				defer p.mu.Unlock()
				if gen != p.gen {
					return &Error{Code: ipc.CodeUnavailable, Msg: "the profile was reloaded during a refresh; try again"}
				}
				return p.replacedLocked()
			}
			p.m.log.Info("the store holds a newer offline token than this agent saved; using it", "profile", p.name)
			rec, storedRT = cur, cur.RefreshToken
			p.mu.Lock()
			if gen == p.gen {
				p.rec, p.storedRT, p.persistPending = cur, cur.RefreshToken, false
			}
			p.mu.Unlock()
		}
		// Any other read error: go on with the token in memory, which is
		// the newest this agent knows.
	}

	client, err := p.m.NewClient(ctx, p.cfg.Issuer, p.cfg.ClientID)
	var tok *oidc.Token
	if err == nil {
		tok, err = client.Refresh(ctx, rec.RefreshToken, scopes)
	}
	now := p.m.now()
	if err != nil {
		return p.failed(gen, key, err)
	}

	rotated := tok.RefreshToken != "" && tok.RefreshToken != rec.RefreshToken
	persistErr := error(nil)
	if rotated {
		rec.RefreshToken = tok.RefreshToken
		rec.SavedAt = now.UTC()
		p.mu.Lock()
		stale := gen != p.gen
		p.mu.Unlock()
		if stale {
			return &Error{Code: ipc.CodeUnavailable, Msg: "the profile was reloaded during a refresh; try again"}
		}
		var replaced bool
		replaced, persistErr = p.saveRotated(ctx, st, rec, storedRT)
		if replaced {
			p.mu.Lock()
			defer p.mu.Unlock()
			if gen != p.gen {
				return &Error{Code: ipc.CodeUnavailable, Msg: "the profile was reloaded during a refresh; try again"}
			}
			return p.replacedLocked()
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen {
		return &Error{Code: ipc.CodeUnavailable, Msg: "the profile was reloaded during a refresh; try again"}
	}
	if rotated && persistErr == nil {
		p.storedRT = rec.RefreshToken
	}
	p.rec = rec // the old refresh token is dead (or will be): never reuse it
	if persistErr != nil {
		p.persistPending = true
		p.lastErr = "could not save the rotated offline token (kept in memory, retrying): " + persistErr.Error()
		p.m.log.Warn("saving the rotated offline token failed; keeping it in memory and retrying", "profile", p.name, "err", persistErr)
	} else if rotated {
		p.persistPending = false
	}
	lifetime := tok.ExpiresIn
	if lifetime <= 0 {
		lifetime = time.Minute
	}
	frac := 0.75 + rand.Float64()*0.05
	p.access[key] = &cached{
		Access:    Access{Token: tok.AccessToken, Type: tokenType(tok.TokenType), ExpiresAt: now.Add(lifetime)},
		issued:    now,
		refreshAt: now.Add(time.Duration(float64(lifetime) * frac)),
	}
	p.state = ipc.StateActive
	if !p.persistPending {
		p.lastErr, p.hint = "", ""
	}
	p.failures = 0
	p.lastRefresh = now
	p.refreshes++
	p.m.log.Debug("refreshed", "profile", p.name, "scopes", key, "expires_in", lifetime, "rotated", rotated)
	p.scheduleLocked()
	return nil
}

func tokenType(t string) string {
	if strings.EqualFold(t, "bearer") || t == "" {
		return "Bearer"
	}
	return t
}

func (p *profile) failed(gen int, key string, err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen {
		return &Error{Code: ipc.CodeUnavailable, Msg: "the profile was reloaded during a refresh; try again"}
	}
	hint := oidc.HintOf(err)
	switch oidc.KindOf(err) {
	case oidc.KindScope:
		// The request's own scopes are the problem, not the login: fail
		// this request and leave the profile as it was.
		scopes := key
		if scopes == "" {
			scopes = strings.Join(p.cfg.Scopes, " ")
		}
		msg := fmt.Sprintf("the identity provider refused the scopes %q for profile %q: %v", scopes, p.name, err)
		if key == "" {
			p.lastErr = msg
			p.hint = "fix the scopes of profile " + p.name + " in the config file"
			p.m.log.Warn("the profile's own scopes are refused", "profile", p.name, "scopes", scopes)
			return &Error{Code: ipc.CodeInvalidScope, Msg: msg, Hint: p.hint}
		}
		p.m.log.Info("scope refused for one request", "profile", p.name, "scopes", scopes)
		return &Error{Code: ipc.CodeInvalidScope, Msg: msg, Hint: "ask without --scope " + strings.ReplaceAll(key, " ", " --scope ") + ", or ask the Keycloak admin to add it to the client as an optional client scope"}
	case oidc.KindLoginRequired, oidc.KindConfig:
		p.state = ipc.StateLoginRequired
		p.lastErr = err.Error()
		p.hint = hint
		if oidc.KindOf(err) == oidc.KindLoginRequired {
			p.hint = loginHint(p.name)
		}
		p.access = map[string]*cached{}
		p.m.log.Warn("login required", "profile", p.name, "reason", err.Error())
		p.scheduleLocked() // stops the timer: nothing to do until a login
		return p.loginRequiredLocked()
	}
	p.state = ipc.StateDegraded
	p.lastErr = err.Error()
	p.hint = "kc-agent keeps serving the cached token until it expires and retries with backoff"
	p.failures++
	p.m.log.Warn("refresh failed; will retry", "profile", p.name, "attempt", p.failures, "err", err.Error())
	p.scheduleLocked()
	return &Error{Code: ipc.CodeUnavailable, Msg: fmt.Sprintf("can not refresh profile %q: %v", p.name, err), Hint: p.hint}
}

// scheduleLocked sets the one timer of the profile: refresh ahead while
// hot, keep alive daily while cold, back off while degraded.
func (p *profile) scheduleLocked() {
	if p.timer != nil {
		p.timer.Stop()
	}
	p.nextRefresh = time.Time{}
	sched := p.m.schedule()
	if p.stopped || !p.loaded && p.state != ipc.StateDegraded {
		return
	}
	now := p.m.now()
	var at time.Time
	switch p.state {
	case ipc.StateLoginRequired, ipc.StateLoggedOut:
		return
	case ipc.StateDegraded:
		d := sched.BackoffBase << min(p.failures-1, 20)
		if d > sched.BackoffMax || d <= 0 {
			d = sched.BackoffMax
		}
		at = now.Add(jitter(d))
	default:
		if p.persistPending {
			at = now.Add(jitter(sched.BackoffBase * 4))
		}
		hot := now.Sub(p.lastUsed) <= sched.HotWindow
		c := p.access[""]
		var due time.Time
		switch {
		case hot && c != nil:
			due = c.refreshAt
		case hot:
			due = now // used, but no token yet for its own scopes: fetch now
		default:
			due = p.keepAliveBaseLocked().Add(sched.KeepAlive)
		}
		if at.IsZero() || due.Before(at) {
			at = due
		}
	}
	p.nextRefresh = at
	gen := p.gen
	p.timer = time.AfterFunc(max(at.Sub(now), 0), func() { p.background(gen) })
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + rand.Float64()*0.2))
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

	sched := p.m.schedule()
	p.mu.Lock()
	p.kicked = false
	if gen != p.gen || p.stopped {
		p.mu.Unlock()
		return
	}
	now := p.m.now()
	hot := now.Sub(p.lastUsed) <= sched.HotWindow
	c := p.access[""]
	due := p.state == ipc.StateDegraded ||
		(hot && (c == nil || !now.Before(c.refreshAt))) ||
		(!hot && !now.Before(p.keepAliveBaseLocked().Add(sched.KeepAlive)))
	pending := p.persistPending
	rec, st, storedRT := p.rec, p.st, p.storedRT
	p.mu.Unlock()

	if !p.isLoaded() {
		if err := p.ensureLoaded(ctx, gen); err != nil {
			return
		}
	}
	if due {
		_ = p.refresh(ctx, gen, "", nil)
		return
	}
	if pending {
		replaced, err := p.saveRotated(ctx, st, rec, storedRT)
		p.mu.Lock()
		switch {
		case gen != p.gen:
		case replaced:
			p.replacedLocked()
			p.mu.Unlock()
			return
		case err == nil && p.rec.RefreshToken == rec.RefreshToken:
			p.storedRT = rec.RefreshToken
			p.persistPending = false
			p.lastErr = ""
			p.m.log.Info("saved the rotated offline token", "profile", p.name)
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	if gen == p.gen {
		p.scheduleLocked()
	}
	p.mu.Unlock()
}

// keepAliveBaseLocked is when the offline session was last used: the last
// refresh, or, before the first one, when the token was saved.
func (p *profile) keepAliveBaseLocked() time.Time {
	if !p.lastRefresh.IsZero() {
		return p.lastRefresh
	}
	return p.rec.SavedAt
}

func (p *profile) isLoaded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.loaded
}

// Status describes every profile; it never waits for a refresh.
func (m *Manager) Status() []ipc.ProfileStatus {
	m.mu.Lock()
	ps := make([]*profile, 0, len(m.profiles))
	for _, p := range m.profiles {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	out := make([]ipc.ProfileStatus, 0, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		s := ipc.ProfileStatus{
			Name: p.name, State: p.state, User: p.rec.Username, Issuer: p.cfg.Issuer, ClientID: p.cfg.ClientID,
			Store: p.cfg.Store, Refreshes: p.refreshes, LastError: p.lastErr, Hint: p.hint, PersistPending: p.persistPending,
		}
		if c := p.access[""]; c != nil {
			s.AccessExpiresAt = timePtr(c.ExpiresAt)
		}
		s.LastRefresh = timePtr(p.lastRefresh)
		s.NextRefresh = timePtr(p.nextRefresh)
		s.LastUsed = timePtr(p.lastUsed)
		if s.State == ipc.StateLoginRequired && s.Hint == "" {
			s.Hint = loginHint(p.name)
		}
		if s.State == ipc.StateLoggedOut {
			s.Hint = loginHint(p.name)
		}
		p.mu.Unlock()
		out = append(out, s)
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
