package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
)

// SignInLimits shape the sign-ins the agent runs.
type SignInLimits struct {
	// Lifetime, when set, ends a sign-in sooner than its device code
	// (tests: an expiry without waiting ten minutes).
	Lifetime time.Duration
	// BrowserLifetime is how long a browser sign-in waits for its redirect.
	BrowserLifetime time.Duration
	// PerWindow sign-ins may start per Window; joining one that runs is
	// free. A notebook cell in a loop can not spam Keycloak.
	PerWindow int
	Window    time.Duration
	// Keep is how long an ended sign-in still answers GET.
	Keep time.Duration
}

// DefaultSignInLimits are the limits a real agent runs with.
var DefaultSignInLimits = SignInLimits{BrowserLifetime: 5 * time.Minute, PerWindow: 5, Window: time.Minute, Keep: 10 * time.Minute}

var signInLimits atomic.Pointer[SignInLimits]

func init() { signInLimits.Store(&DefaultSignInLimits) }

func limits() SignInLimits { return *signInLimits.Load() }

// SetSignInLimits changes the limits of a running agent (tests) and returns
// a function that puts the old ones back.
func SetSignInLimits(l SignInLimits) (restore func()) {
	old := signInLimits.Swap(&l)
	return func() { signInLimits.Store(old) }
}

// signIns are the sign-ins the agent runs: one per profile at a time.
type signIns struct {
	mu        sync.Mutex
	byID      map[string]*signIn
	byProfile map[string]*signIn // the running one
	starts    []time.Time        // for the rate limit
	wg        sync.WaitGroup
	closed    bool
}

type signIn struct {
	ready  chan struct{} // closed once started (or failed to start)
	ended  chan struct{} // closed when the state leaves pending
	cancel context.CancelFunc

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

// gcLocked forgets sign-ins that ended more than the Keep limit ago.
func (ss *signIns) gcLocked(now time.Time) {
	for id, s := range ss.byID {
		s.mu.Lock()
		old := !s.endedAt.IsZero() && now.Sub(s.endedAt) > limits().Keep
		s.mu.Unlock()
		if old {
			delete(ss.byID, id)
		}
	}
}

func (ss *signIns) get(id string) *signIn {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.gcLocked(time.Now())
	return ss.byID[id]
}

// list is every sign-in the agent remembers, newest first, for status.
func (ss *signIns) list() []ipc.LoginStatus {
	ss.mu.Lock()
	all := make([]*signIn, 0, len(ss.byID))
	for _, s := range ss.byID {
		all = append(all, s)
	}
	ss.mu.Unlock()
	out := []ipc.LoginStatus{}
	for _, s := range all {
		select {
		case <-s.ready:
			out = append(out, s.status(false))
		default:
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.After(out[j].StartedAt) })
	return out
}

// close cancels every running sign-in and waits for them to end.
func (ss *signIns) close() {
	ss.mu.Lock()
	ss.closed = true
	for _, s := range ss.byProfile {
		if s.cancel != nil {
			s.cancel()
		}
	}
	ss.mu.Unlock()
	ss.wg.Wait()
}

func (d *Daemon) handleLoginStart(w http.ResponseWriter, r *http.Request) {
	var req ipc.LoginRequest
	if e := ipc.DecodeJSON(r, &req); e != nil {
		ipc.WriteError(w, e)
		return
	}
	bad := func(msg string) {
		ipc.WriteError(w, &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest, Message: msg})
	}
	if req.Profile == "" {
		req.Profile = ipc.DefaultProfile
	}
	if len(req.Profile) > 64 {
		bad("profile name too long")
		return
	}
	switch req.Flow {
	case "":
		req.Flow = ipc.FlowDevice
	case ipc.FlowDevice, ipc.FlowBrowser:
	default:
		bad(fmt.Sprintf("flow must be %q or %q", ipc.FlowDevice, ipc.FlowBrowser))
		return
	}
	prof, err := d.mgr.ProfileConfig(req.Profile)
	if err != nil {
		ipc.WriteError(w, d.unknownProfile(req.Profile, err))
		return
	}

	ss := &d.logins
	ctx, cancel := context.WithCancel(context.Background())
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		cancel()
		ipc.WriteError(w, &ipc.Error{Status: http.StatusServiceUnavailable, Code: ipc.CodeUnavailable, Message: "the agent is shutting down"})
		return
	}
	if s := ss.byProfile[req.Profile]; s != nil && !s.hasEnded() {
		ss.mu.Unlock()
		cancel()
		// One sign-in per profile: this caller joins it (whatever flow it
		// asked for: the answer says which one runs).
		select {
		case <-s.ready:
		case <-r.Context().Done():
			return
		}
		st := s.status(true)
		if st.State == ipc.LoginFailed && st.ID == "" {
			ipc.WriteError(w, &ipc.Error{Status: http.StatusBadGateway, Code: ipc.CodeUpstream, Message: st.Error, Hint: st.Hint})
			return
		}
		st.Joined = true
		d.log.Info("sign-in joined", "profile", req.Profile, "id", st.ID)
		ipc.WriteJSON(w, http.StatusOK, st)
		return
	}
	now := time.Now()
	lim := limits()
	kept := ss.starts[:0]
	for _, t := range ss.starts {
		if now.Sub(t) < lim.Window {
			kept = append(kept, t)
		}
	}
	ss.starts = kept
	if len(ss.starts) >= lim.PerWindow {
		retry := lim.Window - now.Sub(ss.starts[0])
		ss.mu.Unlock()
		cancel()
		d.log.Warn("sign-in refused: too many started", "profile", req.Profile)
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		ipc.WriteError(w, &ipc.Error{Status: http.StatusTooManyRequests, Code: ipc.CodeRateLimited,
			Message: fmt.Sprintf("%d sign-ins were started in the last %s; not starting another", len(ss.starts), lim.Window),
			Hint:    fmt.Sprintf("try again in %ds", int(retry.Seconds())+1)})
		return
	}
	ss.starts = append(ss.starts, now)
	s := &signIn{ready: make(chan struct{}), ended: make(chan struct{}), cancel: cancel}
	s.st = ipc.LoginStatus{Profile: req.Profile, Flow: req.Flow, State: ipc.LoginPending, StartedAt: now.UTC().Truncate(time.Second)}
	ss.byProfile[req.Profile] = s
	ss.wg.Add(1)
	ss.mu.Unlock()

	wait, err := d.startSignIn(ctx, s, prof)
	if err != nil {
		cancel()
		s.finish(ipc.LoginFailed, err.Error(), oidc.HintOf(err), nil)
		ss.mu.Lock()
		delete(ss.byProfile, req.Profile)
		ss.mu.Unlock()
		close(s.ready)
		ss.wg.Done()
		d.log.Warn("sign-in could not start", "profile", req.Profile, "flow", req.Flow, "err", err.Error())
		ipc.WriteError(w, &ipc.Error{Status: http.StatusBadGateway, Code: ipc.CodeUpstream, Message: "could not start the sign-in: " + err.Error(), Hint: oidc.HintOf(err)})
		return
	}
	s.mu.Lock()
	s.st.ID = newID()
	id, expires := s.st.ID, s.st.ExpiresAt
	s.mu.Unlock()
	ss.mu.Lock()
	ss.byID[id] = s
	ss.mu.Unlock()
	close(s.ready)
	d.log.Info("sign-in started", "profile", req.Profile, "flow", req.Flow, "id", id, "issuer", prof.Issuer, "expires_at", expires.Format(time.RFC3339))
	go func() {
		defer ss.wg.Done()
		defer cancel()
		d.runSignIn(ctx, s, prof, wait)
		ss.mu.Lock()
		if ss.byProfile[req.Profile] == s {
			delete(ss.byProfile, req.Profile)
		}
		ss.mu.Unlock()
	}()
	ipc.WriteJSON(w, http.StatusOK, s.status(true))
}

func (d *Daemon) unknownProfile(name string, err error) *ipc.Error {
	e := d.apiError(name, err)
	if e.Code != ipc.CodeUnknown {
		return e
	}
	d.mu.Lock()
	if d.configErr != "" {
		d.mu.Unlock()
		return e // apiError says the config is invalid, and what to do
	}
	files := d.opts.ConfigPath
	if d.cfg != nil && d.cfg.SystemPath() != "" {
		files += " or the system-wide " + d.cfg.SystemPath()
	} else {
		files += " (no system-wide " + config.SystemFilePath() + ")"
	}
	d.mu.Unlock()
	e.Message = fmt.Sprintf("no profile %q in the config: not in %s", name, files)
	if e.Hint == "" || strings.HasPrefix(e.Hint, "run `kc-agent login") {
		e.Hint = fmt.Sprintf("ask your administrator to add profile %q to the system-wide config, or run `kc-agent login --profile %s <issuer-url>` once in a terminal", name, name)
	}
	return e
}

// startSignIn asks Keycloak for a device code, or opens the loopback
// listener of a browser sign-in, and fills in what the user needs.
func (d *Daemon) startSignIn(ctx context.Context, s *signIn, prof config.Profile) (func(context.Context) (*oidc.LoginResult, error), error) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := oidc.ForProfile(sctx, prof)
	if err != nil {
		return nil, err
	}
	if key, err := tokens.NewLoginKey(prof); err != nil {
		return nil, err
	} else if key != nil {
		client = client.WithDPoP(key) // dpop: on: the login is bound to key
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.ClientID, s.st.ClientName = client.ClientID, prof.ClientName
	now := time.Now()
	lim := limits()
	if s.st.Flow == ipc.FlowBrowser {
		life := lim.BrowserLifetime
		if lim.Lifetime > 0 {
			life = lim.Lifetime
		}
		b, err := client.StartBrowser(prof.Scopes, life)
		if err != nil {
			return nil, err
		}
		s.st.AuthorizationURL = b.AuthURL
		s.st.ExpiresAt = b.Expiry.UTC().Truncate(time.Second)
		return d.withClient(client, func(ctx context.Context) (*oidc.LoginResult, error) {
			defer b.Close()
			return b.Wait(ctx)
		}), nil
	}
	dl, err := client.StartDevice(sctx, prof.Scopes)
	if err != nil {
		return nil, err
	}
	expires := dl.Expiry
	if expires.IsZero() {
		expires = now.Add(lim.BrowserLifetime)
	}
	if lim.Lifetime > 0 && now.Add(lim.Lifetime).Before(expires) {
		expires = now.Add(lim.Lifetime)
	}
	s.st.VerificationURI = dl.VerificationURI
	s.st.VerificationURIComplete = dl.VerificationURIComplete
	s.st.UserCode = dl.UserCode
	s.st.Interval = int(dl.Interval / time.Second)
	s.st.ExpiresAt = expires.UTC().Truncate(time.Second)
	target := dl.VerificationURIComplete
	if target == "" {
		target = dl.VerificationURI
	}
	s.qr = qrSVG(target)
	return d.withClient(client, dl.Wait), nil
}

// withClient keeps the client beside the wait, for storing and for ending
// the replaced login's session.
func (d *Daemon) withClient(c *oidc.Client, wait func(context.Context) (*oidc.LoginResult, error)) func(context.Context) (*oidc.LoginResult, error) {
	return func(ctx context.Context) (*oidc.LoginResult, error) {
		res, err := wait(ctx)
		if err == nil {
			res.Client = c
		}
		return res, err
	}
}

// runSignIn waits for the user, then verifies and stores the login.
func (d *Daemon) runSignIn(ctx context.Context, s *signIn, prof config.Profile, wait func(context.Context) (*oidc.LoginResult, error)) {
	st := s.status(false)
	wctx, cancel := context.WithDeadline(ctx, st.ExpiresAt.Add(time.Second))
	defer cancel()
	res, err := wait(wctx)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		s.finish(ipc.LoginCancelled, "the sign-in was cancelled", "", nil)
	case wctx.Err() != nil || !time.Now().Before(st.ExpiresAt) || oidcCode(err) == "expired_token":
		// (A browser sign-in's own deadline is ExpiresAt, a little before
		// wctx's.)
		s.finish(ipc.LoginExpired, "the sign-in expired before it was approved", "start it again, and approve it sooner", nil)
	case oidc.KindOf(err) == oidc.KindDenied:
		s.finish(ipc.LoginDenied, "the sign-in was denied", "start it again and accept the request", nil)
	default:
		s.finish(ipc.LoginFailed, err.Error(), oidc.HintOf(err), nil)
	}
	if err != nil {
		end := s.status(false)
		d.log.Info("sign-in ended", "profile", st.Profile, "id", st.ID, "state", end.State, "err", err.Error())
		return
	}
	rec := store.Record{
		RefreshToken: res.Token.RefreshToken,
		Issuer:       prof.Issuer,
		ClientID:     prof.ClientID,
		Scopes:       prof.Scopes,
		Subject:      res.Identity.Subject,
		Username:     res.Identity.Username,
		SavedAt:      time.Now().UTC().Round(time.Second),
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), tokens.RefreshTimeout)
	defer scancel()
	err = tokens.KeepLoginKey(sctx, st.Profile, prof, res.Client.DPoPKey(), &rec)
	var previous store.Record
	if err == nil {
		previous, err = d.mgr.StoreLogin(sctx, st.Profile, rec)
	}
	if err != nil {
		// End the new session rather than leave it orphaned at Keycloak.
		_ = res.Client.Logout(sctx, rec.RefreshToken)
		s.finish(ipc.LoginFailed, "signed in, but could not store the offline token: "+err.Error(), "see `kc-agent doctor`", nil)
		d.log.Error("sign-in: could not store the login", "profile", st.Profile, "id", st.ID, "err", err.Error())
		return
	}
	// The old login is replaced; end its session so it does not linger.
	if previous.RefreshToken != "" && previous.Issuer == prof.Issuer && previous.RefreshToken != rec.RefreshToken {
		_ = res.Client.Logout(sctx, previous.RefreshToken)
	}
	id := res.Identity
	s.finish(ipc.LoginDone, "", "", &ipc.LoginIdentity{PreferredUsername: id.Username, Subject: id.Subject, Email: id.Email, Name: id.Name})
	d.log.Info("sign-in done", "profile", st.Profile, "id", st.ID, "user", id.Username)
}

func oidcCode(err error) string {
	var oe *oidc.Error
	if errors.As(err, &oe) {
		return oe.Code
	}
	return ""
}

func (d *Daemon) lookupSignIn(w http.ResponseWriter, r *http.Request) *signIn {
	s := d.logins.get(r.PathValue("id"))
	if s == nil {
		ipc.WriteError(w, &ipc.Error{Status: http.StatusNotFound, Code: ipc.CodeNotFound, Message: "no such sign-in (it ended a while ago, or the agent restarted)",
			Hint: "start a new one"})
	}
	return s
}

func (d *Daemon) handleLoginGet(w http.ResponseWriter, r *http.Request) {
	s := d.lookupSignIn(w, r)
	if s == nil {
		return
	}
	if ws := r.URL.Query().Get("wait"); ws != "" {
		wait, err := time.ParseDuration(ws)
		if err != nil {
			secs, serr := strconv.ParseFloat(ws, 64)
			if serr != nil || secs != secs {
				ipc.WriteError(w, &ipc.Error{Status: http.StatusBadRequest, Code: ipc.CodeBadRequest, Message: "wait must be a duration like 30s"})
				return
			}
			wait = time.Duration(secs * float64(time.Second))
		}
		wait = min(max(wait, 0), ipc.MaxLoginWait)
		t := time.NewTimer(wait)
		select {
		case <-s.ended:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
	}
	ipc.WriteJSON(w, http.StatusOK, s.status(true))
}

func (d *Daemon) handleLoginCancel(w http.ResponseWriter, r *http.Request) {
	s := d.lookupSignIn(w, r)
	if s == nil {
		return
	}
	if s.cancel != nil {
		s.cancel()
	}
	select {
	case <-s.ended:
	case <-time.After(5 * time.Second):
	}
	d.log.Info("sign-in cancelled by a caller", "profile", s.status(false).Profile, "id", r.PathValue("id"))
	ipc.WriteJSON(w, http.StatusOK, s.status(false))
}

func (d *Daemon) handleLoginQR(w http.ResponseWriter, r *http.Request) {
	s := d.lookupSignIn(w, r)
	if s == nil {
		return
	}
	svg := s.status(true).QRSVG
	if svg == "" {
		ipc.WriteError(w, &ipc.Error{Status: http.StatusNotFound, Code: ipc.CodeNotFound, Message: "this sign-in has no QR code (browser flow)"})
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(svg))
}

// qrSVG draws the QR code of text as an SVG: one path of unit squares,
// dark on white, with the quiet zone.
func qrSVG(text string) string {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return ""
	}
	bm := q.Bitmap()
	n := len(bm)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" shape-rendering="crispEdges">`, n, n, n*4, n*4)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y, row := range bm {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String()
}
