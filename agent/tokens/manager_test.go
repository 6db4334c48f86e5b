package tokens

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
)

// fakeIdP rotates refresh tokens like Keycloak with Revoke Refresh Token on:
// every refresh returns a new one, and using an old one is an error.
type fakeIdP struct {
	mu       sync.Mutex
	current  string
	n        int
	calls    atomic.Int32
	lifetime time.Duration
	err      error // returned instead of tokens when set
	delay    time.Duration
	reused   bool
	// other is a second session's current refresh token (a new login
	// while the first session lives on): it rotates on its own.
	other string
}

func (f *fakeIdP) Refresh(ctx context.Context, rt string, scopes []string) (*oidc.Token, error) {
	f.calls.Add(1)
	f.mu.Lock()
	delay := f.delay
	f.mu.Unlock()
	time.Sleep(delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if f.other != "" && rt == f.other {
		f.n++
		f.other = fmt.Sprintf("other-%d", f.n)
		return &oidc.Token{AccessToken: fmt.Sprintf("at-%d", f.n), RefreshToken: f.other, TokenType: "bearer", ExpiresIn: f.lifetime}, nil
	}
	if rt != f.current {
		f.reused = true
		return nil, &oidc.Error{Kind: oidc.KindLoginRequired, Code: "invalid_grant", Description: "Stale token", Msg: "the offline session is no longer valid"}
	}
	f.n++
	f.current = fmt.Sprintf("rt-%d", f.n)
	return &oidc.Token{AccessToken: fmt.Sprintf("at-%d", f.n), RefreshToken: f.current, TokenType: "bearer", ExpiresIn: f.lifetime}, nil
}

type fakeStore struct {
	mu      sync.Mutex
	rec     map[string]store.Record
	putErr  error
	puts    int
	getWait time.Duration
}

func (s *fakeStore) Get(ctx context.Context, p string) (store.Record, error) {
	s.mu.Lock()
	wait := s.getWait
	s.mu.Unlock()
	time.Sleep(wait)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rec[p]
	if !ok {
		return store.Record{}, store.ErrNotFound
	}
	return r, nil
}

func (s *fakeStore) Put(ctx context.Context, p string, r store.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.putErr != nil {
		return s.putErr
	}
	s.puts++
	s.rec[p] = r
	return nil
}

func (s *fakeStore) Delete(ctx context.Context, p string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rec[p]; !ok {
		return store.ErrNotFound
	}
	delete(s.rec, p)
	return nil
}
func (s *fakeStore) Describe() string                        { return "fake" }
func (s *fakeStore) CheckWritable(ctx context.Context) error { return nil }

func (s *fakeStore) token(p string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec[p].RefreshToken
}

const issuer = "https://sso.example.com/realms/r"

type harness struct {
	m     *Manager
	idp   *fakeIdP
	st    *fakeStore
	clock atomic.Int64 // offset added to time.Now
}

func newHarness(t *testing.T, lifetime time.Duration) *harness {
	h := &harness{
		idp: &fakeIdP{current: "rt-0", lifetime: lifetime},
		st:  &fakeStore{rec: map[string]store.Record{"default": {RefreshToken: "rt-0", Issuer: issuer, ClientID: "kc-agent", Username: "alice", SavedAt: time.Now()}}},
	}
	h.m = NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.m.Now = func() time.Time { return time.Now().Add(time.Duration(h.clock.Load())) }
	h.m.NewClient = func(context.Context, config.Profile) (Refresher, error) { return h.idp, nil }
	h.m.StoreFor = func(config.Profile) (store.Store, error) { return h.st, nil }
	cfg, err := config.Parse("c.yaml", []byte("profiles:\n  default:\n    issuer: "+issuer+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	h.m.SetConfig(cfg)
	t.Cleanup(h.m.Close)
	return h
}

func (h *harness) token(t *testing.T, minValid time.Duration) (Access, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.m.Token(ctx, Request{Profile: "default", MinValid: minValid})
}

func TestSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, time.Hour)
		h.idp.delay = 50 * time.Millisecond
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := h.token(t, 0)
				if err == nil && a.Token != "at-1" {
					err = fmt.Errorf("got token %s", a.Token)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := h.idp.calls.Load(); n != 1 {
			t.Fatalf("200 concurrent callers caused %d refreshes, want 1", n)
		}
	})
}

func TestRotationPersistedBeforeServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, time.Hour)
		for i := 1; i <= 3; i++ {
			if _, err := h.token(t, time.Hour-time.Second); err != nil {
				t.Fatal(err)
			}
			// The token just served came with a rotated refresh token, which
			// must already be in the store.
			if got, want := h.st.token("default"), fmt.Sprintf("rt-%d", h.idp.n); got != want {
				t.Fatalf("store has %s, IdP's current is %s", got, want)
			}
			h.clock.Add(int64(2 * time.Second)) // make the cached one too short
		}
		if h.idp.reused {
			t.Fatal("an old refresh token was used again")
		}
	})
}

func TestPersistFailureKeepsServingAndNeverReusesOldToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 30*time.Second)
		h.st.putErr = errors.New("keychain locked")
		if _, err := h.token(t, 0); err != nil {
			t.Fatal(err)
		}
		st := h.m.Status()[0]
		if !st.PersistPending || st.LastError == "" {
			t.Fatalf("status does not show the unsaved token: %+v", st)
		}
		// Next refresh must use the new (unsaved) token, not the stored old one.
		h.clock.Add(int64(28 * time.Second))
		if _, err := h.token(t, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if h.idp.reused {
			t.Fatal("fell back to the older refresh token")
		}
		h.st.mu.Lock()
		h.st.putErr = nil
		h.st.mu.Unlock()
		h.clock.Add(int64(28 * time.Second))
		if _, err := h.token(t, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if h.m.Status()[0].PersistPending || h.st.token("default") != h.idp.current {
			t.Fatal("the rotated token was not saved once the store worked again")
		}
	})
}

func TestMinValidForcesRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 60*time.Second)
		a1, _ := h.token(t, 0)
		h.clock.Add(int64(40 * time.Second)) // 20 s left
		a2, err := h.token(t, 10*time.Second)
		if err != nil || a2.Token != a1.Token {
			t.Fatalf("20 s left satisfies min_valid 10 s: %v %v", a2, err)
		}
		a3, err := h.token(t, 30*time.Second)
		if err != nil || a3.Token == a1.Token {
			t.Fatalf("min_valid 30 s with 20 s left did not refresh: %v", err)
		}
		if left := a3.ExpiresAt.Sub(h.m.now()); left < 30*time.Second {
			t.Fatalf("served a token with %s left, asked for 30s", left)
		}
	})
}

// After a laptop sleep the timer is late; the wall clock decides.
func TestWallClockJumpIsNoticed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 60*time.Second)
		a1, _ := h.token(t, 0)
		h.clock.Add(int64(2 * time.Hour))
		a2, err := h.token(t, 0)
		if err != nil || a2.Token == a1.Token {
			t.Fatalf("expired token served after a clock jump: %v", err)
		}
	})
}

func TestInvalidGrantMeansLoginRequired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 60*time.Second)
		h.idp.err = &oidc.Error{Kind: oidc.KindLoginRequired, Code: "invalid_grant", Description: "Offline user session not found", Msg: "the offline session is no longer valid"}
		_, err := h.token(t, 0)
		var te *Error
		if !errors.As(err, &te) || te.Code != CodeLoginRequired || te.Hint != "run `kc-agent login` to sign in again" {
			t.Fatalf("got %#v", err)
		}
		st := h.m.Status()[0]
		if st.State != StateLoginRequired || st.LastError == "" || !st.NextRefresh.IsZero() {
			t.Fatalf("status: %+v", st)
		}
		// No more refreshes are attempted for a dead session.
		calls := h.idp.calls.Load()
		h.token(t, 0)
		if h.idp.calls.Load() != calls {
			t.Fatal("refreshed again after login_required")
		}
	})
}

func TestTransientErrorServesCachedAndBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 60*time.Second)
		sched := DefaultSchedule
		sched.BackoffBase = 50 * time.Millisecond
		h.m.SetSchedule(sched)
		a1, _ := h.token(t, 0)
		h.idp.mu.Lock()
		h.idp.err = &oidc.Error{Kind: oidc.KindTransient, Msg: "can not reach the token endpoint"}
		h.idp.mu.Unlock()
		h.clock.Add(int64(50 * time.Second)) // 10 s left: a refresh is due
		a2, err := h.token(t, 0)
		if err != nil || a2.Token != a1.Token {
			t.Fatalf("degraded agent did not serve the cached token: %v", err)
		}
		waitState(t, h.m, StateDegraded)
		if st := h.m.Status()[0]; st.NextRefresh.IsZero() {
			t.Fatalf("degraded without a retry scheduled: %+v", st)
		}
		if _, err := h.token(t, 30*time.Second); err == nil {
			t.Fatal("served a token shorter than min_valid while degraded")
		}
		// Retries are spaced out: over 600 ms with a 50 ms base, the backoff
		// allows only a handful, not a busy loop.
		time.Sleep(600 * time.Millisecond)
		if n := h.idp.calls.Load(); n > 8 {
			t.Fatalf("%d refresh attempts in 600 ms: busy loop", n)
		}
		h.idp.mu.Lock()
		h.idp.err = nil
		h.idp.mu.Unlock()
		waitState(t, h.m, StateActive)
	})
}

func waitState(t *testing.T, m *Manager, state State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for m.Status()[0].State != state && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := m.Status()[0]; st.State != state {
		t.Fatalf("state %s, want %s: %+v", st.State, state, st)
	}
}

func TestProactiveRefreshOnlyWhileHot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 400*time.Millisecond)
		h.token(t, 0)
		time.Sleep(1500 * time.Millisecond)
		hot := h.idp.calls.Load()
		if hot < 3 {
			t.Fatalf("hot profile refreshed %d times in ~4 lifetimes, want ahead-of-expiry refreshes", hot)
		}
		sched := DefaultSchedule
		sched.HotWindow = 0
		h.m.SetSchedule(sched)
		time.Sleep(100 * time.Millisecond)
		before := h.idp.calls.Load()
		time.Sleep(1200 * time.Millisecond)
		if n := h.idp.calls.Load() - before; n > 1 {
			t.Fatalf("cold profile kept refreshing (%d in 3 lifetimes)", n)
		}
	})
}

func TestSlowStoreDoesNotBlockStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, time.Minute)
		h.st.mu.Lock()
		h.st.getWait = 2 * time.Second
		h.st.mu.Unlock()
		h.m.Reload("")
		done := make(chan struct{})
		go func() { h.m.Status(); close(done) }()
		select {
		case <-done:
		case <-time.After(500 * time.Millisecond):
			t.Fatal("status waited for the store")
		}
	})
}

func TestUnknownProfile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, time.Minute)
		_, err := h.m.Token(context.Background(), Request{Profile: "nope"})
		var te *Error
		if !errors.As(err, &te) || te.Code != CodeUnknownProfile {
			t.Fatalf("got %v", err)
		}
	})
}

func TestAccessStringHidesToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := Access{Token: "secret-access", ExpiresAt: time.Now()}
		if s := fmt.Sprintf("%v %+v", a, a); strings.Contains(s, "secret-access") {
			t.Fatal(s)
		}
	})
}

// Tokens too short to serve at all (under MinServe) are an error with
// a hint; longer ones cap min_valid (TestMinValidCappedAtHalfTheLifetime).
func TestTokensTooShortToServeFail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 4*time.Second)
		_, err := h.token(t, 2*time.Minute)
		var te *Error
		if !errors.As(err, &te) || te.Code != CodeUnavailable || te.Hint == "" {
			t.Fatalf("got %v", err)
		}
	})
}

// A slow provider for one profile holds up neither another profile nor
// status.
func TestSlowProfileDoesNotBlockOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := &fakeIdP{current: "rt-0", lifetime: time.Hour, delay: 3 * time.Second}
		fast := &fakeIdP{current: "rt-0", lifetime: time.Hour}
		st := &fakeStore{rec: map[string]store.Record{
			"slow": {RefreshToken: "rt-0", Issuer: "https://slow.example.com/realms/r", ClientID: "kc-agent"},
			"fast": {RefreshToken: "rt-0", Issuer: "https://fast.example.com/realms/r", ClientID: "kc-agent"},
		}}
		m := NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)))
		m.NewClient = func(_ context.Context, p config.Profile) (Refresher, error) {
			if strings.Contains(p.Issuer, "slow") {
				return slow, nil
			}
			return fast, nil
		}
		m.StoreFor = func(config.Profile) (store.Store, error) { return st, nil }
		cfg, _ := config.Parse("c.yaml", []byte("profiles:\n  slow:\n    issuer: https://slow.example.com/realms/r\n  fast:\n    issuer: https://fast.example.com/realms/r\n"))
		m.SetConfig(cfg)
		defer m.Close()
		go m.Token(context.Background(), Request{Profile: "slow"})
		time.Sleep(100 * time.Millisecond) // the slow refresh is under way
		done := make(chan error, 1)
		go func() {
			_, err := m.Token(context.Background(), Request{Profile: "fast"})
			m.Status()
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a slow profile blocked another profile or status")
		}
	})
}

// A login kept (session.Keeper.Replace) while a refresh of the old
// session is under way waits for it, and is not overwritten by the old
// session's rotated token; the agent uses the new login from then on.
func TestNewLoginDuringRefreshIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, time.Hour)
		h.idp.delay = 300 * time.Millisecond
		done := make(chan error, 1)
		go func() { _, err := h.token(t, 0); done <- err }()
		time.Sleep(100 * time.Millisecond) // the refresh with rt-0 is under way
		// A new login: a second session at the provider.
		h.idp.mu.Lock()
		h.idp.other = "new-login"
		h.idp.mu.Unlock()
		rec := store.Record{RefreshToken: "new-login", Issuer: issuer, ClientID: "kc-agent", Username: "alice", SavedAt: time.Now()}
		var previous store.Record
		prev, err := h.m.Replace(context.Background(), "default", rec, func(p store.Record) (func(), error) { previous = p; return nil, nil })
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("the refresh under way: %v", err)
		}
		if prev.RefreshToken != "rt-1" || previous.RefreshToken != "rt-1" {
			t.Fatalf("replaced %s (accept saw %s), want the old session's newest token rt-1", prev.RefreshToken, previous.RefreshToken)
		}
		if got := h.st.token("default"); got != "new-login" {
			t.Fatalf("the store holds %s after the new login", got)
		}
		h.idp.mu.Lock()
		h.idp.delay = 0
		h.idp.mu.Unlock()
		if _, err := h.m.Token(context.Background(), Request{Profile: "default", Force: true}); err != nil {
			t.Fatal(err)
		}
		h.idp.mu.Lock()
		reused, old := h.idp.reused, h.idp.current
		h.idp.mu.Unlock()
		if reused || old != "rt-1" {
			t.Fatalf("the old session was used after the new login (reused %v, its token now %s)", reused, old)
		}
		if got := h.st.token("default"); !strings.HasPrefix(got, "other-") {
			t.Fatalf("the store holds %s, not the new session's rotated token", got)
		}
	})
}

// A logout (session.Keeper.Remove) racing refreshes never lets a refresh
// bring the deleted login back: whatever was in flight, once Remove has
// returned the store stays empty and callers are told to log in.
func TestLogoutRacingRefreshNeverResurrects(t *testing.T) {
	for i := 0; i < 100; i++ {
		h := newHarness(t, time.Hour)
		h.idp.delay = time.Duration(i%7) * time.Millisecond
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					h.m.Token(ctx, Request{Profile: "default", Force: true})
					cancel()
				}
			}()
		}
		time.Sleep(time.Duration(i%5) * time.Millisecond)
		rec, err := h.m.Remove(context.Background(), "default")
		if err != nil {
			t.Fatalf("round %d: remove: %v", i, err)
		}
		h.idp.mu.Lock()
		current := h.idp.current
		h.idp.mu.Unlock()
		if rec.RefreshToken != current {
			t.Fatalf("round %d: remove returned %s, but the live session's token is %s", i, rec.RefreshToken, current)
		}
		time.Sleep(5 * time.Millisecond)
		close(stop)
		wg.Wait()
		if got := h.st.token("default"); got != "" {
			t.Fatalf("round %d: the store holds %s after the logout", i, got)
		}
		_, err = h.token(t, 0)
		var te *Error
		if !errors.As(err, &te) || te.Code != CodeLoginRequired {
			t.Fatalf("round %d: token after the logout: %v", i, err)
		}
	}
}

func TestMinValidCappedAtHalfTheLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 30*time.Second)
		for i := 0; i < 5; i++ {
			a, err := h.token(t, time.Minute)
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			if time.Until(a.ExpiresAt) < 15*time.Second-time.Second {
				t.Fatalf("served a token with %s left", time.Until(a.ExpiresAt))
			}
		}
		if n := h.idp.calls.Load(); n != 1 {
			t.Fatalf("5 calls with min_valid above the lifetime made %d refresh grants, want 1", n)
		}
	})
}

// Forced refreshes: each caller gets a token issued after it asked, and
// callers asking at once share one refresh grant.
func TestForceRefreshSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, time.Hour)
		first, err := h.token(t, 0)
		if err != nil {
			t.Fatal(err)
		}
		h.idp.delay = 50 * time.Millisecond
		var wg sync.WaitGroup
		got := make(chan string, 50)
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := h.m.Token(context.Background(), Request{Profile: "default", Force: true})
				if err != nil {
					t.Error(err)
					return
				}
				got <- a.Token
			}()
		}
		wg.Wait()
		close(got)
		for tok := range got {
			if tok == first.Token {
				t.Fatal("a forced refresh got the token it asked to replace")
			}
		}
		if n := h.idp.calls.Load(); n != 2 {
			t.Fatalf("50 concurrent forced refreshes made %d grants in all, want 2 (the first token and one forced)", n)
		}
	})
}

// A scope the provider refuses fails that request; the profile keeps
// serving its own token.
func TestInvalidScopeFailsOneRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, time.Hour)
		if _, err := h.token(t, 0); err != nil {
			t.Fatal(err)
		}
		h.idp.mu.Lock()
		h.idp.err = &oidc.Error{Kind: oidc.KindScope, Code: "invalid_scope", Msg: "a requested scope is not available to the client"}
		h.idp.mu.Unlock()
		_, err := h.m.Token(context.Background(), Request{Profile: "default", Scopes: []string{"bogus"}})
		var te *Error
		if !errors.As(err, &te) || te.Code != CodeInvalidScope || !strings.Contains(te.Msg, "bogus") {
			t.Fatalf("bogus scope: %v", err)
		}
		h.idp.mu.Lock()
		h.idp.err = nil
		h.idp.mu.Unlock()
		if _, err := h.token(t, 0); err != nil {
			t.Fatalf("the profile stopped serving after a bad scope: %v", err)
		}
		if st := h.m.Status()[0]; st.State != StateActive {
			t.Fatalf("state after a bad scope: %s", st.State)
		}
	})
}
