// Package session is the one home of a profile's login: start (or join) a
// sign-in, wait for it, verify and keep the result, end the session it
// replaces, and log out. The agent's socket API (agent/daemon), `kc-agent
// login` and `logout` (in-process when no agent runs) and, through the
// API, the Python client's login() only present it (Presenter, Converse).
//
// It speaks the socket API's vocabulary (ipc.LoginStatus, ipc.Error codes)
// because every caller ends up showing exactly that.
package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
)

// Profile is what a sign-in needs to know of a profile: its settings (with
// defaults), and which file they come from, to say whose fix a problem is.
type Profile struct {
	Config config.Profile
	// Source is the config file the profile comes from.
	Source string
	// System: Source is the administrator's system-wide file, which the
	// user can not change.
	System bool
}

// Keeper is where logins are kept. The agent's is its token manager (it
// holds the profile's refresh slot while it writes, so no refresh of the
// old login runs meanwhile); without an agent, the store itself
// (StoreKeeper), under the one-agent lock the command holds.
type Keeper interface {
	// CheckWritable tells, before a sign-in starts, whether a login for
	// the profile could be kept (store.ErrUnavailable: no keychain here).
	CheckWritable(ctx context.Context, name string) error
	// Replace reads the profile's stored login, asks accept whether rec
	// may replace it (nothing is written when it says no), writes rec and
	// returns the login it replaced (empty when none). When writing rec
	// fails, it calls the undo accept returned (if any), still under the
	// profile's slot.
	Replace(ctx context.Context, name string, rec store.Record, accept func(previous store.Record) (undo func(), err error)) (store.Record, error)
	// Remove deletes the profile's login and returns the newest record of
	// it (store.ErrNotFound when there was none).
	Remove(ctx context.Context, name string) (store.Record, error)
	// Describe says where the profile's logins are kept.
	Describe(name string) string
}

// Service runs the sign-ins and logouts of one agent (or one command).
type Service struct {
	// Profile looks a profile up; its errors are *ipc.Error (unknown
	// profile, invalid config) and go to the caller as they are.
	Profile func(name string) (Profile, error)
	Keeper  Keeper
	Log     *slog.Logger
	// Limits, when set, replace the package's (a command's --timeout).
	Limits *Limits
	// NewClient talks to the provider (a seam for tests).
	NewClient func(ctx context.Context, p config.Profile) (*oidc.Client, error)

	signIns signIns
	launch  launchSlot
}

// New returns a service with the real provider client.
func New(profile func(string) (Profile, error), k Keeper, log *slog.Logger) *Service {
	s := &Service{Profile: profile, Keeper: k, Log: log,
		NewClient: func(ctx context.Context, p config.Profile) (*oidc.Client, error) { return oidc.ForProfile(ctx, p) }}
	s.signIns.byID, s.signIns.byProfile = map[string]*signIn{}, map[string]*signIn{}
	return s
}

func (s *Service) limits() Limits {
	if s.Limits != nil {
		return *s.Limits
	}
	return *defaultLimits.Load()
}

// profileName applies the default and the one naming rule.
func profileName(name string) (string, error) {
	if name == "" {
		name = config.DefaultProfile
	}
	if !config.ValidProfileName(name) {
		return "", &ipc.Error{Code: ipc.CodeBadRequest, Message: fmt.Sprintf("invalid profile name %q: use 1-64 letters, digits, '.', '_' or '-'", name)}
	}
	return name, nil
}

// storeRefused says why a sign-in does not start: its login could not be
// kept. The hint says whose fix it is: the administrator's, for a profile
// from the system-wide file, else the user's own store: line.
func storeRefused(name string, p Profile, err error) *ipc.Error {
	e := &ipc.Error{Code: ipc.CodeConfig,
		Message: fmt.Sprintf("not starting the sign-in: no keychain to keep the login of profile %q in (%v)", name, err)}
	switch {
	case !errors.Is(err, store.ErrUnavailable):
		e.Message = fmt.Sprintf("not starting the sign-in: profile %q could not keep the login here: %v", name, err)
		e.Hint = "make the state directory writable for you (or set KC_AGENT_STATE_DIR to one that is), then sign in again"
	case p.System:
		e.Hint = fmt.Sprintf("only your administrator can fix this: profile %q comes from the system-wide config %s, which should say `store: file` for it "+
			"on a host without a keychain (each user's token then lives in a 0600 file in their own state directory)", name, p.Source)
	default:
		other := storeHint(err)
		if other == "" {
			other = "start and unlock a keychain"
		}
		e.Hint = fmt.Sprintf("add `store: file` to profile %q in %s (a 0600 file in your state directory, for hosts without a keychain), or %s",
			name, p.Source, other)
	}
	return e
}

// Logout ends a profile's login: the stored token first (so no refresh
// can bring it back), then the session at the provider (with all, every
// offline session of the user for the client). A provider that can't be
// reached is reported in the answer; the local token is gone either way.
func (s *Service) Logout(ctx context.Context, req ipc.LogoutRequest) (*ipc.LogoutResponse, error) {
	name, err := profileName(req.Profile)
	if err != nil {
		return nil, err
	}
	prof, err := s.Profile(name)
	if err != nil {
		return nil, err
	}
	out := &ipc.LogoutResponse{Profile: name, All: req.All, Store: s.Keeper.Describe(name)}
	rec, err := s.Keeper.Remove(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, &ipc.Error{Code: ipc.CodeUnavailable, Message: "could not delete the stored token: " + err.Error(), Hint: storeHint(err)}
	}
	out.LoggedIn, out.User, out.ClientID = true, rec.Username, rec.ClientID
	p := prof.Config
	p.Issuer, p.ClientID = rec.Issuer, rec.ClientID
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err = s.endRemote(rctx, name, p, rec, req.All)
	if kerr := tokens.ForgetLoginKey(rctx, name, p); kerr != nil {
		s.log().Warn("logout: could not delete the login's DPoP key", "profile", name, "err", kerr.Error())
	}
	switch {
	case errors.As(err, new(*onlyHereError)):
		out.Remote, out.RemoteError = ipc.RemoteEndedHere, onlyHereNote(err, rec)
	case errors.Is(err, oidc.ErrLogoutNeedsProof):
		out.Remote, out.RemoteError = ipc.RemoteFailed, boundLogoutNote
	case err == nil:
		out.Remote = ipc.RemoteEnded
	case oidc.KindOf(err) == oidc.KindLoginRequired:
		out.Remote = ipc.RemoteAlreadyEnded
	default:
		out.Remote, out.RemoteError = ipc.RemoteFailed, err.Error()
	}
	s.log().Info("logged out", "profile", name, "user", rec.Username, "all", req.All, "remote", out.Remote)
	return out, nil
}

// endRemote ends one session at the provider (or, with all, revokes every
// offline session of the user for the client).
// A bound login's calls carry proofs by its key.
func (s *Service) endRemote(ctx context.Context, name string, p config.Profile, rec store.Record, all bool) error {
	client, err := s.NewClient(ctx, p)
	if err != nil {
		return err
	}
	client = tokens.LogoutClient(ctx, name, p, rec, client)
	if all {
		return endAll(ctx, client, rec.RefreshToken)
	}
	return client.Logout(ctx, rec.RefreshToken)
}

// endAll ends every offline session of the user for the client through
// the account API, and revokes the stored token too. Where the account
// API can't (refused: the user lacks manage-account; or the refresh for
// its access token failed), the revocation still ends this machine's
// session: that is an *onlyHereError.
func endAll(ctx context.Context, client *oidc.Client, refreshToken string) error {
	errAll := client.EndAllSessions(ctx, refreshToken)
	errRevoke := client.Revoke(ctx, refreshToken)
	switch {
	case errAll == nil:
		return nil
	case errRevoke == nil:
		return &onlyHereError{reason: errAll}
	default:
		return errAll
	}
}

// onlyHereError: a logout with all ended this machine's session, not the
// user's others.
type onlyHereError struct{ reason error }

func (e *onlyHereError) Error() string { return e.reason.Error() }

// onlyHereNote says why the other sessions live on and where to end them.
func onlyHereNote(err error, rec store.Record) string {
	return fmt.Sprintf("%v. To end them, remove %s's access in the Keycloak account console (%s/account, Applications), "+
		"or ask a Keycloak administrator (the user's Sessions or Consents)", err, rec.ClientID, strings.TrimRight(rec.Issuer, "/"))
}

// boundLogoutNote says why a DPoP-bound session outlives its logout, and
// why that is harmless.
const boundLogoutNote = "Keycloak's logout endpoint ignores DPoP proofs (keycloak/keycloak#50306); " +
	"the login's DPoP key is deleted too, and without the key no copy of the token can refresh the session"

func storeHint(err error) string {
	var ue *store.UnavailableError
	if errors.As(err, &ue) {
		return ue.Hint()
	}
	return ""
}

func (s *Service) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}
