package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kc-agent/kc-agent/ipc"
)

// Limits shape the sign-ins a service runs.
type Limits struct {
	// Lifetime, when set, ends a sign-in sooner than its device code
	// (tests: an expiry without waiting ten minutes; a command: --timeout).
	Lifetime time.Duration
	// BrowserLifetime is how long a browser sign-in waits for its redirect.
	BrowserLifetime time.Duration
	// PerWindow sign-ins may start per Window; joining one that runs is
	// free. A notebook cell in a loop can not spam Keycloak.
	PerWindow int
	Window    time.Duration
	// Keep is how long an ended sign-in still answers Status.
	Keep time.Duration
}

// DefaultLimits are the limits a real agent runs with.
var DefaultLimits = Limits{BrowserLifetime: 5 * time.Minute, PerWindow: 5, Window: time.Minute, Keep: 10 * time.Minute}

var defaultLimits atomic.Pointer[Limits]

func init() { defaultLimits.Store(&DefaultLimits) }

// SetLimits changes the limits of every service without its own (tests
// change a running agent's) and returns a function that puts the old ones
// back.
func SetLimits(l Limits) (restore func()) {
	old := defaultLimits.Swap(&l)
	return func() { defaultLimits.Store(old) }
}

// signIns are the sign-ins a service runs: one per profile at a time.
type signIns struct {
	mu        sync.Mutex
	byID      map[string]*signIn
	byProfile map[string]*signIn // the running one
	starts    []time.Time        // for the rate limit
	wg        sync.WaitGroup
	closed    bool
}

type signIn struct {
	ready      chan struct{} // closed once started (or failed to start)
	ended      chan struct{} // closed when the state leaves pending
	cancel     context.CancelFunc
	switchUser bool

	mu      sync.Mutex
	st      ipc.LoginStatus
	qr      string
	endedAt time.Time
}

func (s *signIn) status(withQR bool) ipc.LoginStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	if st.Identity != nil {
		id := *st.Identity
		st.Identity = &id
	}
	if withQR {
		st.QRSVG = s.qr
	}
	return st
}

func (s *signIn) finish(state, msg, hint string, id *ipc.LoginIdentity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.State != ipc.LoginPending {
		return
	}
	s.st.State, s.st.Error, s.st.Hint, s.st.Identity = state, msg, hint, id
	s.endedAt = time.Now()
	close(s.ended)
}

// hasEnded reports whether the sign-in is over (done, failed, cancelled):
// one that ended but is not yet out of byProfile is not joined, a new one
// starts.
func (s *signIn) hasEnded() bool {
	select {
	case <-s.ended:
		return true
	default:
		return false
	}
}

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// gcLocked forgets sign-ins that ended more than keep ago.
func (ss *signIns) gcLocked(now time.Time, keep time.Duration) {
	for id, s := range ss.byID {
		s.mu.Lock()
		old := !s.endedAt.IsZero() && now.Sub(s.endedAt) > keep
		s.mu.Unlock()
		if old {
			delete(ss.byID, id)
		}
	}
}

// rateLimitedLocked is the refusal when too many sign-ins started in the
// window, or nil (and the start is counted).
func (ss *signIns) rateLimitedLocked(now time.Time, lim Limits) *ipc.Error {
	kept := ss.starts[:0]
	for _, t := range ss.starts {
		if now.Sub(t) < lim.Window {
			kept = append(kept, t)
		}
	}
	ss.starts = kept
	if len(ss.starts) >= lim.PerWindow {
		retry := int((lim.Window - now.Sub(ss.starts[0])).Seconds()) + 1
		return &ipc.Error{Code: ipc.CodeRateLimited,
			Message: fmt.Sprintf("%d sign-ins were started in the last %s; not starting another", len(ss.starts), lim.Window),
			Hint:    fmt.Sprintf("try again in %ds", retry)}
	}
	ss.starts = append(ss.starts, now)
	return nil
}

// SignIn is a sign-in's state; withQR adds the QR code's SVG.
func (s *Service) SignIn(id string, withQR bool) (*ipc.LoginStatus, error) {
	si := s.lookup(id)
	if si == nil {
		return nil, errNoSuchSignIn()
	}
	st := si.status(withQR)
	return &st, nil
}

// LoginStatus reports on a sign-in, waiting up to wait (at most
// ipc.MaxLoginWait) for it to end: the same call as ipc.Client's.
func (s *Service) LoginStatus(ctx context.Context, id string, wait time.Duration) (*ipc.LoginStatus, error) {
	si := s.lookup(id)
	if si == nil {
		return nil, errNoSuchSignIn()
	}
	t := time.NewTimer(min(max(wait, 0), ipc.MaxLoginWait))
	defer t.Stop()
	select {
	case <-si.ended:
	case <-t.C:
	case <-ctx.Done():
	}
	st := si.status(true)
	return &st, nil
}

// CancelLogin cancels a sign-in and waits a moment for it to end.
func (s *Service) CancelLogin(ctx context.Context, id string) error {
	si := s.lookup(id)
	if si == nil {
		return errNoSuchSignIn()
	}
	if si.cancel != nil {
		si.cancel()
	}
	select {
	case <-si.ended:
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	s.log().Info("sign-in cancelled by a caller", "profile", si.status(false).Profile, "id", id)
	return nil
}

func errNoSuchSignIn() *ipc.Error {
	return &ipc.Error{Code: ipc.CodeNotFound, Message: "no such sign-in (it ended a while ago, or the agent restarted)", Hint: "start a new one"}
}

func (s *Service) lookup(id string) *signIn {
	ss := &s.signIns
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.gcLocked(time.Now(), s.limits().Keep)
	return ss.byID[id]
}

// SignIns is every sign-in the service remembers, newest first, for status.
func (s *Service) SignIns() []ipc.LoginStatus {
	ss := &s.signIns
	ss.mu.Lock()
	all := make([]*signIn, 0, len(ss.byID))
	for _, si := range ss.byID {
		all = append(all, si)
	}
	ss.mu.Unlock()
	out := []ipc.LoginStatus{}
	for _, si := range all {
		select {
		case <-si.ready:
			out = append(out, si.status(false))
		default:
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.After(out[j].StartedAt) })
	return out
}

// Close cancels every running sign-in and waits for them to end.
func (s *Service) Close() {
	ss := &s.signIns
	ss.mu.Lock()
	ss.closed = true
	for _, si := range ss.byProfile {
		if si.cancel != nil {
			si.cancel()
		}
	}
	ss.mu.Unlock()
	ss.wg.Wait()
	s.launch.close()
}
