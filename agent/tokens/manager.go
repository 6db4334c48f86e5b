// Package tokens owns the offline tokens in the daemon and keeps access
// tokens fresh: refresh ahead of expiry, one refresh per profile at a time,
// rotation-safe persistence, backoff on trouble, and a daily keep-alive.
//
// manager.go is the API (Token, Status, SetConfig, Reload); profile.go one
// login's state and its refresh; schedule.go when refreshes happen.
package tokens

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kc-agent/kc-agent/agent/cleartext"
	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
)

const (
	// MinServe: a token with less life left than this is never handed out.
	MinServe = 5 * time.Second
	// RefreshTimeout bounds one background refresh, store write included.
	RefreshTimeout = 45 * time.Second
)

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

// Request asks for an access token.
type Request struct {
	Profile string
	// Scopes narrow the token; nil means the profile's own scopes.
	Scopes []string
	// MinValid is the least remaining lifetime accepted (never less than
	// MinServe); a shorter-lived cached token is refreshed first. More than
	// the provider's whole lifetime counts as half of it; 0 (not asked) is
	// Schedule.defaultNeed, which never brings a refresh forward.
	MinValid time.Duration
	// Force asks for a token issued after the request arrived (the caller's
	// token was refused). Concurrent forced requests share one refresh.
	Force bool
	// ID asks for the ID token of the refresh instead of the access token
	// (kubectl). It is cached beside the access token of the same scope
	// set; openid is added to explicit scopes that lack it.
	ID bool
}

// Manager serves access tokens for every configured profile.
type Manager struct {
	log *slog.Logger
	// Seams, replaced by tests.
	Now       func() time.Time
	NewClient func(ctx context.Context, p config.Profile) (Refresher, error)
	StoreFor  func(config.Profile) (store.Store, error)

	sched atomic.Pointer[Schedule] // read under profile locks: never behind m.mu

	mu       sync.Mutex
	profiles map[string]*profile
	// ownersVisible is the config's (Config.OwnersVisible): whether an
	// http issuer's listener could be checked, for status's warnings.
	ownersVisible bool
	closed        bool
	wg            sync.WaitGroup
}

// NewManager returns a manager with the real provider and stores.
func NewManager(log *slog.Logger) *Manager {
	m := &Manager{
		log: log,
		Now: time.Now,
		NewClient: func(ctx context.Context, p config.Profile) (Refresher, error) {
			return oidc.ForProfile(ctx, p)
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
	m.ownersVisible = cfg.OwnersVisible()
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
		p := &profile{m: m, name: name, cfg: pc, sem: make(chan struct{}, 1), access: map[string]*cached{}, state: StateLoggedOut}
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
	return a.Issuer == b.Issuer && a.ClientID == b.ClientID && a.Store == b.Store && slices.Equal(a.Scopes, b.Scopes) &&
		a.UnsafeCleartextIssuer == b.UnsafeCleartextIssuer && a.AllowForeignEndpoints == b.AllowForeignEndpoints && a.DPoPMode() == b.DPoPMode()
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
// and reads the store again (POST /v1/reload).
func (m *Manager) Reload(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if name != "" {
		if _, ok := m.profiles[name]; !ok {
			return &Error{Code: CodeUnknownProfile, Msg: fmt.Sprintf("no profile %q in the agent's config", name)}
		}
	}
	for n, p := range m.profiles {
		if name != "" && n != name {
			continue
		}
		p.mu.Lock()
		p.forgetLocked()
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

func (m *Manager) profile(name string) (*profile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.profiles[name]
	if !ok {
		return nil, &Error{Code: CodeUnknownProfile, Msg: fmt.Sprintf("no profile %q is configured", name),
			Hint: fmt.Sprintf("run `kc-agent login --profile %s <issuer-url>`", name)}
	}
	return p, nil
}

// Token returns an access token for the request's profile: from the cache
// when it is fresh enough, else after the profile's one refresh.
func (m *Manager) Token(ctx context.Context, req Request) (Access, error) {
	p, err := m.profile(req.Profile)
	if err != nil {
		return Access{}, err
	}
	scopes := req.Scopes
	if req.ID && scopes != nil && !slices.Contains(scopes, "openid") {
		scopes = append(slices.Clone(scopes), "openid")
	}
	key := scopeKey(scopes)
	if key == scopeKey(p.cfg.Scopes) {
		key = ""
	}
	need := max(req.MinValid, 0) // 0: the default for the token's lifetime (freshLocked)
	a, ok, newerThan, err := p.cachedToken(key, need, req.Force, req.ID)
	if ok || err != nil {
		return a, err
	}

	// Slow path: one refresh at a time. Whoever waited behind another
	// refresh finds a fresh token when it gets the semaphore.
	if !p.acquire(ctx) {
		return Access{}, &Error{Code: CodeUnavailable, Msg: "gave up waiting for a token refresh: " + ctx.Err().Error()}
	}
	defer p.release()
	p.mu.Lock()
	a, ok = p.freshLocked(key, m.now(), need, newerThan, req.ID)
	gen := p.gen
	p.mu.Unlock()
	if ok {
		return a, nil
	}
	if err := p.ensureLoaded(ctx, gen); err != nil {
		return Access{}, err
	}
	refreshScopes := scopes
	if key == "" {
		refreshScopes = nil
	}
	err = p.refresh(ctx, gen, key, refreshScopes)
	p.mu.Lock()
	defer p.mu.Unlock()
	// After a failed refresh (degraded), the cached token is still served
	// while it lasts, unless the caller asked for a new one (or for more
	// life than it has: a caller that named no min_valid takes any).
	if err != nil && need == 0 {
		need = MinServe
	}
	if a, ok := p.freshLocked(key, m.now(), need, anyToken, req.ID); ok && (err == nil || !req.Force) {
		return a, nil
	}
	if err != nil {
		return Access{}, err
	}
	if c := p.access[key]; req.ID && c != nil && c.id.Token == "" {
		return Access{}, &Error{Code: CodeConfig,
			Msg:  fmt.Sprintf("the identity provider returned no ID token for profile %q", p.name),
			Hint: "make sure the client allows the openid scope (kc-agent asks for it), or use the access token"}
	}
	return Access{}, &Error{Code: CodeUnavailable,
		Msg:  fmt.Sprintf("the identity provider issues tokens that live less than %s", MinServe),
		Hint: "ask the Keycloak admin for a longer access token lifespan"}
}

// cachedToken is Token's fast path: the cached token when it will do
// (ok), or the profile's login_required error, or neither (refresh). A
// forced request takes only a token from a refresh after this moment:
// newerThan says which.
func (p *profile) cachedToken(key string, need time.Duration, force, id bool) (a Access, ok bool, newerThan int, err error) {
	sched := p.m.schedule()
	p.mu.Lock()
	defer p.mu.Unlock()
	newerThan = anyToken
	if force {
		newerThan = p.refreshes
	}
	now := p.m.now()
	wasCold := now.Sub(p.lastUsed) > sched.HotWindow
	p.lastUsed = now
	if wasCold {
		p.scheduleLocked() // from daily keep-alive to refresh-ahead
	}
	if a, ok := p.freshLocked(key, now, need, newerThan, id); ok {
		// Past its refresh point (the timer ran late, e.g. after a laptop
		// sleep): serve this one, refresh behind the caller's back.
		if c := p.access[""]; key == "" && c != nil && !now.Before(c.refreshAt) && !p.kicked {
			p.kicked = true
			go p.background(p.gen)
		}
		return a, true, newerThan, nil
	}
	if p.loaded && p.state == StateLoginRequired {
		return Access{}, false, newerThan, p.loginRequiredLocked()
	}
	return Access{}, false, newerThan, nil
}

// ProfileStatus describes one profile for `kc-agent status`.
type ProfileStatus struct {
	Name, User, Issuer, ClientID, Store string
	State                               State
	AccessExpiresAt                     time.Time
	LastRefresh, NextRefresh, LastUsed  time.Time
	Refreshes                           int
	LastError, Hint                     string
	PersistPending                      bool
	Warnings                            []string
	ForeignListeners                    []cleartext.ForeignListener
	DPoP                                DPoPStatus
}

// profileWarnings names the risky settings a profile uses, on a system
// that shows who owns a TCP socket (ownersVisible) or not.
func profileWarnings(p config.Profile, ownersVisible bool) []string {
	var w []string
	if u, err := url.Parse(p.Issuer); err == nil && u.Scheme == "http" && !ownersVisible {
		w = append(w, "the offline token goes in the clear to "+u.Host+", and this system can not tell who listens there (unsafe_cleartext_issuer)")
	}
	if p.AllowForeignEndpoints {
		w = append(w, "endpoints outside the issuer's own origin are accepted (allow_foreign_endpoints)")
	}
	return w
}

// Status describes every profile; it never waits for a refresh.
func (m *Manager) Status() []ProfileStatus {
	m.mu.Lock()
	ps := make([]*profile, 0, len(m.profiles))
	for _, p := range m.profiles {
		ps = append(ps, p)
	}
	ownersVisible := m.ownersVisible
	m.mu.Unlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	out := make([]ProfileStatus, 0, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		s := ProfileStatus{
			Name: p.name, State: p.state, User: p.rec.Username, Issuer: p.cfg.Issuer, ClientID: p.cfg.ClientID,
			Store: p.cfg.Store, Refreshes: p.refreshes, LastError: p.lastErr, Hint: p.hint, PersistPending: p.persistPending,
			LastRefresh: p.lastRefresh, NextRefresh: p.nextRefresh, LastUsed: p.lastUsed,
		}
		if c := p.access[""]; c != nil {
			s.AccessExpiresAt = c.ExpiresAt
		}
		s.Warnings = profileWarnings(p.cfg, ownersVisible)
		s.ForeignListeners = p.foreign.Snapshot()
		s.DPoP = p.dpopStatusLocked()
		if s.State == StateLoginRequired && s.Hint == "" || s.State == StateLoggedOut {
			s.Hint = loginHint(p.name)
		}
		p.mu.Unlock()
		out = append(out, s)
	}
	return out
}
