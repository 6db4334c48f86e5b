package session

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
)

// StartLogin starts a sign-in for a configured profile, or joins the one
// that runs for it (whatever flow it asked for: the answer says which one
// runs). Before anything reaches the provider it checks the rate limit and
// that the login could be kept. The same call as ipc.Client's.
func (s *Service) StartLogin(ctx context.Context, req ipc.LoginRequest) (*ipc.LoginStatus, error) {
	name, err := profileName(req.Profile)
	if err != nil {
		return nil, err
	}
	switch req.Flow {
	case "":
		req.Flow = ipc.FlowDevice
	case ipc.FlowDevice, ipc.FlowBrowser:
	default:
		return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: fmt.Sprintf("flow must be %q or %q", ipc.FlowDevice, ipc.FlowBrowser)}
	}
	prof, err := s.Profile(name)
	if err != nil {
		return nil, err
	}
	si, joined, err := s.claim(ctx, name, req)
	if err != nil || joined {
		return si, err
	}
	return s.begin(ctx, name, prof, req)
}

// claim joins the profile's running sign-in (joined), or checks that a new
// one may start (nil, false, nil): not shutting down, within the rate
// limit.
func (s *Service) claim(ctx context.Context, name string, req ipc.LoginRequest) (*ipc.LoginStatus, bool, error) {
	ss := &s.signIns
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return nil, false, &ipc.Error{Code: ipc.CodeUnavailable, Message: "the agent is shutting down"}
	}
	if si := ss.byProfile[name]; si != nil && !si.hasEnded() {
		ss.mu.Unlock()
		select {
		case <-si.ready:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		st := si.status(true)
		if st.State == ipc.LoginFailed && st.ID == "" {
			return nil, false, &ipc.Error{Code: ipc.CodeUpstream, Message: st.Error, Hint: st.Hint}
		}
		st.Joined = true
		s.log().Info("sign-in joined", "profile", name, "id", st.ID)
		return &st, true, nil
	}
	e := ss.rateLimitedLocked(time.Now(), s.limits())
	ss.mu.Unlock()
	if e != nil {
		s.log().Warn("sign-in refused: too many started", "profile", name)
		return nil, false, e
	}
	return nil, false, nil
}

// begin checks the store, starts the flow and leaves a goroutine waiting
// for the user.
func (s *Service) begin(ctx context.Context, name string, prof Profile, req ipc.LoginRequest) (*ipc.LoginStatus, error) {
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	err := s.Keeper.CheckWritable(cctx, name)
	ccancel()
	if err != nil {
		s.log().Warn("sign-in refused: the login could not be kept", "profile", name, "err", err.Error())
		return nil, storeRefused(name, prof, err)
	}
	ss := &s.signIns
	// The sign-in outlives the request that started it.
	runCtx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	si := &signIn{ready: make(chan struct{}), ended: make(chan struct{}), cancel: cancel, switchUser: req.SwitchUser}
	si.st = ipc.LoginStatus{Profile: name, Flow: req.Flow, State: ipc.LoginPending, StartedAt: now.UTC().Truncate(time.Second)}
	ss.mu.Lock()
	if cur := ss.byProfile[name]; cur != nil && !cur.hasEnded() {
		// Another caller started one while the store was checked: join it.
		ss.mu.Unlock()
		cancel()
		st, joined, err := s.claim(ctx, name, req)
		if err == nil && !joined {
			return s.begin(ctx, name, prof, req) // it ended meanwhile
		}
		return st, err
	}
	ss.byProfile[name] = si
	ss.wg.Add(1)
	ss.mu.Unlock()

	wait, client, err := s.startFlow(runCtx, si, prof.Config)
	if err != nil {
		cancel()
		si.finish(ipc.LoginFailed, err.Error(), oidc.HintOf(err), nil)
		ss.mu.Lock()
		delete(ss.byProfile, name)
		ss.mu.Unlock()
		close(si.ready)
		ss.wg.Done()
		s.log().Warn("sign-in could not start", "profile", name, "flow", req.Flow, "err", err.Error())
		return nil, &ipc.Error{Code: ipc.CodeUpstream, Message: "could not start the sign-in: " + err.Error(), Hint: oidc.HintOf(err)}
	}
	si.mu.Lock()
	si.st.ID = newID()
	id, expires := si.st.ID, si.st.ExpiresAt
	si.mu.Unlock()
	ss.mu.Lock()
	ss.byID[id] = si
	ss.mu.Unlock()
	close(si.ready)
	s.log().Info("sign-in started", "profile", name, "flow", req.Flow, "id", id, "issuer", prof.Config.Issuer, "expires_at", expires.Format(time.RFC3339))
	go func() {
		defer ss.wg.Done()
		defer cancel()
		s.run(runCtx, si, prof.Config, client, wait)
		ss.mu.Lock()
		if ss.byProfile[name] == si {
			delete(ss.byProfile, name)
		}
		ss.mu.Unlock()
	}()
	st := si.status(true)
	return &st, nil
}

type waitFunc func(context.Context) (*oidc.LoginResult, error)

// startFlow asks the provider for a device code, or opens the loopback
// listener of a browser sign-in, and fills in what the user needs.
func (s *Service) startFlow(ctx context.Context, si *signIn, prof config.Profile) (waitFunc, *oidc.Client, error) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := s.NewClient(sctx, prof)
	if err != nil {
		return nil, nil, err
	}
	if key, err := tokens.NewLoginKey(sctx, prof, client); err != nil {
		return nil, nil, err
	} else if key != nil {
		client = client.WithDPoP(key) // the login is bound to key
	}
	si.mu.Lock()
	defer si.mu.Unlock()
	si.st.ClientID, si.st.ClientName = client.ClientID, prof.ClientName
	now := time.Now()
	lim := s.limits()
	if si.st.Flow == ipc.FlowBrowser {
		life := lim.BrowserLifetime
		if lim.Lifetime > 0 {
			life = lim.Lifetime
		}
		b, err := client.StartBrowser(prof.Scopes, life)
		if err != nil {
			return nil, nil, err
		}
		si.st.AuthorizationURL = b.AuthURL
		si.st.ExpiresAt = b.Expiry.UTC().Truncate(time.Second)
		return func(ctx context.Context) (*oidc.LoginResult, error) {
			defer b.Close()
			return b.Wait(ctx)
		}, client, nil
	}
	dl, err := client.StartDevice(sctx, prof.Scopes)
	if err != nil {
		return nil, nil, err
	}
	expires := dl.Expiry
	if expires.IsZero() {
		expires = now.Add(lim.BrowserLifetime)
	}
	if lim.Lifetime > 0 && now.Add(lim.Lifetime).Before(expires) {
		expires = now.Add(lim.Lifetime)
	}
	si.st.VerificationURI, si.st.VerificationURIComplete, si.st.UserCode = dl.VerificationURI, dl.VerificationURIComplete, dl.UserCode
	si.st.Interval = int(dl.Interval / time.Second)
	si.st.ExpiresAt = expires.UTC().Truncate(time.Second)
	target := dl.VerificationURIComplete
	if target == "" {
		target = dl.VerificationURI
	}
	si.qr = qrSVG(target)
	return dl.Wait, client, nil
}

// run waits for the user, then keeps the login.
func (s *Service) run(ctx context.Context, si *signIn, prof config.Profile, client *oidc.Client, wait waitFunc) {
	st := si.status(false)
	wctx, cancel := context.WithDeadline(ctx, st.ExpiresAt.Add(time.Second))
	defer cancel()
	res, err := wait(wctx)
	var oe *oidc.Error
	switch {
	case err == nil:
		s.keep(ctx, si, prof, client, res)
		return
	case ctx.Err() != nil:
		si.finish(ipc.LoginCancelled, "the sign-in was cancelled", "", nil)
	case wctx.Err() != nil || !time.Now().Before(st.ExpiresAt) || errors.As(err, &oe) && oe.Code == "expired_token":
		// (A browser sign-in's own deadline is ExpiresAt, a little before
		// wctx's.) The provider's words say which wait ran out.
		si.finish(ipc.LoginExpired, "the sign-in expired before it was approved ("+err.Error()+")", "start it again, and approve it sooner", nil)
	case oidc.KindOf(err) == oidc.KindDenied:
		si.finish(ipc.LoginDenied, "the sign-in was denied: "+err.Error(), "start it again and accept the request", nil)
	default:
		si.finish(ipc.LoginFailed, err.Error(), oidc.HintOf(err), nil)
	}
	s.log().Info("sign-in ended", "profile", st.Profile, "id", st.ID, "state", si.status(false).State, "err", err.Error())
}

// keep verifies that the login may replace the stored one (the same user,
// unless the caller asked to switch), stores it and ends the session it
// replaced. A login that is not kept is ended at the provider at once.
func (s *Service) keep(ctx context.Context, si *signIn, prof config.Profile, client *oidc.Client, res *oidc.LoginResult) {
	st := si.status(false)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 45*time.Second)
	defer cancel()
	mode, ok := s.settle(sctx, si, prof, client, res)
	if !ok {
		return
	}
	id := res.Identity
	rec := store.Record{
		RefreshToken: res.Token.RefreshToken, Issuer: prof.Issuer, ClientID: prof.ClientID, Scopes: prof.Scopes,
		Subject: id.Subject, Username: id.Username, SavedAt: time.Now().UTC().Round(time.Second),
	}
	var refused *switchRefused
	var swap *tokens.KeySwap
	err := tokens.BindRecord(client.DPoPKey(), mode, &rec)
	var previous store.Record
	if err == nil {
		previous, err = s.Keeper.Replace(sctx, st.Profile, rec, func(prev store.Record) (func(), error) {
			if !si.switchUser && prev.Issuer == rec.Issuer && prev.Subject != "" && prev.Subject != rec.Subject {
				refused = &switchRefused{was: prev.Username, now: rec.Username}
				return nil, refused
			}
			// The key goes in just before the token, under the same slot,
			// and out again if the token can't be stored.
			var err error
			if swap, err = tokens.SwapLoginKey(sctx, st.Profile, prof, prev, client.DPoPKey()); err != nil {
				return nil, err
			}
			return func() { s.undoKey(sctx, st.Profile, swap) }, nil
		})
	}
	if err != nil {
		// End the new session rather than leave it orphaned at Keycloak.
		_ = client.Logout(sctx, rec.RefreshToken)
		if errors.As(err, &refused) {
			si.finish(ipc.LoginFailed, refused.Error(), refused.hint(st.Profile), nil)
			s.log().Warn("sign-in refused: another user than the stored login", "profile", st.Profile, "id", st.ID, "stored_user", refused.was, "new_user", refused.now)
			return
		}
		si.finish(ipc.LoginFailed, "signed in, but could not store the offline token: "+err.Error(), "see `kc-agent doctor`", nil)
		s.log().Error("sign-in: could not store the login", "profile", st.Profile, "id", st.ID, "err", err.Error())
		return
	}
	if err := swap.Done(sctx); err != nil {
		s.log().Warn("sign-in: "+err.Error(), "profile", st.Profile)
	}
	s.endReplaced(sctx, st.Profile, prof, client, previous, rec, swap.Replaced())
	si.mu.Lock()
	si.st.KeptIn, si.st.OfflineExpiresIn = s.Keeper.Describe(st.Profile), int64(res.Token.RefreshExpiresIn/time.Second)
	si.mu.Unlock()
	si.finish(ipc.LoginDone, "", "", &ipc.LoginIdentity{PreferredUsername: id.Username, Subject: id.Subject, Email: id.Email, Name: id.Name})
	s.log().Info("sign-in done", "profile", st.Profile, "id", st.ID, "user", id.Username)
}

// undoKey puts back the key store as it was before the login that could
// not be stored: the kept login keeps its key.
func (s *Service) undoKey(ctx context.Context, name string, swap *tokens.KeySwap) {
	if err := swap.Undo(ctx); err != nil {
		s.log().Error("sign-in: could not put back the stored login's DPoP key; that login now needs a new sign-in", "profile", name, "err", err.Error())
	}
}

// endReplaced ends the session of the login rec replaced, so that it does
// not linger. A bound one is revoked, with a proof by its own key (key,
// read before the new login's overwrote it) when there is one: Keycloak's
// logout endpoint can't end a bound session (it ignores the proof:
// keycloak/keycloak#50306), while its revocation endpoint ends it, with or
// without a proof, and (measured on Keycloak 26.7) only it, not the new
// login's session. An unbound one is logged out, as before keys.
func (s *Service) endReplaced(ctx context.Context, name string, prof config.Profile, client *oidc.Client, previous, rec store.Record, key crypto.Signer) {
	if previous.RefreshToken == "" || previous.Issuer != prof.Issuer || previous.RefreshToken == rec.RefreshToken {
		return
	}
	if previous.KeyThumbprint == "" && client.DPoPKey() == nil {
		if err := client.Logout(ctx, previous.RefreshToken); err != nil {
			s.log().Warn("sign-in: could not end the replaced session", "profile", name, "err", err.Error())
		}
		return
	}
	p := prof
	p.ClientID = previous.ClientID
	c, err := s.NewClient(ctx, p)
	if err == nil && previous.KeyThumbprint == "" {
		err = c.Logout(ctx, previous.RefreshToken)
	} else if err == nil {
		if key != nil {
			c = c.WithDPoP(key)
		}
		err = c.Revoke(ctx, previous.RefreshToken)
	}
	if err != nil {
		s.log().Warn("sign-in: could not end the replaced session", "profile", name, "bound", previous.KeyThumbprint != "", "err", err.Error())
	}
}

// settle gives a login bound to a key its mode (tokens.SettleLogin: a test
// refresh, so that a refresh-mode login is known to get Bearer access
// tokens before the sign-in is done); res.Token becomes the newest token.
// ok is false when the sign-in failed: its session is then ended.
func (s *Service) settle(ctx context.Context, si *signIn, prof config.Profile, client *oidc.Client, res *oidc.LoginResult) (mode string, ok bool) {
	if client.DPoPKey() == nil {
		return "", true
	}
	tok, mode, err := tokens.SettleLogin(ctx, prof, client, client.ClientID, res.Token)
	res.Token = tok
	if err == nil {
		return mode, true
	}
	_ = client.Logout(ctx, tok.RefreshToken)
	si.finish(ipc.LoginFailed, "signed in, but "+err.Error(), oidc.HintOf(err), nil)
	s.log().Warn("sign-in failed after the grant: its DPoP mode does not fit the realm", "profile", si.status(false).Profile, "err", err.Error())
	return "", false
}

// switchRefused: the sign-in returned another user than the stored login.
type switchRefused struct{ was, now string }

func (e *switchRefused) Error() string {
	return fmt.Sprintf("signed in as %s, but the profile is signed in as %s: kept %s's login and ended the new session", e.now, e.was, e.was)
}

func (e *switchRefused) hint(profile string) string {
	flag := ""
	if profile != config.DefaultProfile {
		flag = " --profile " + profile
	}
	return fmt.Sprintf("to sign in as another user, say so: `kc-agent login%s --switch-user` (Python: login(switch_user=True)); or sign in as %s", flag, e.was)
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
