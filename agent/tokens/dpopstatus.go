package tokens

import (
	"fmt"

	"github.com/kc-agent/kc-agent/agent/config"
)

// DPoPStatus is what status says of a profile's DPoP mode and login.
type DPoPStatus struct {
	// Mode is the configured mode: off, refresh, on or auto.
	Mode string
	// Login is the mode the stored login is in, the one in force:
	// refresh, on, or off (unbound); "" when no login is loaded.
	Login string
	// Key is, for a bound login: KeyMatches, KeyUnusable, KeyOtherToken,
	// or "" (not used since the agent started).
	Key string
	// Note says what to do about a login the mode would make otherwise.
	Note string
}

// dpopStatusLocked describes the profile's DPoP mode and login. Called
// with p.mu held; no I/O.
func (p *profile) dpopStatusLocked() DPoPStatus {
	s := DPoPStatus{Mode: p.cfg.DPoPMode()}
	if p.rec.RefreshToken == "" {
		return s
	}
	s.Login = LoginMode(p.rec)
	if s.Login != config.DPoPOff {
		s.Key = p.keyCheck
		if jkt := BoundJKT(p.rec.RefreshToken); jkt != "" && jkt != p.rec.KeyThumbprint {
			s.Key = KeyOtherToken
		}
	}
	s.Note = p.dpopNoteLocked(s)
	return s
}

func (p *profile) dpopNoteLocked(s DPoPStatus) string {
	bind := fmt.Sprintf("sign in again to bind it: `%s` (in a notebook: login(force=True))", loginCommand(p.name))
	switch {
	case s.Login == config.DPoPOff && (s.Mode == config.DPoPRefresh || s.Mode == config.DPoPOn):
		return "the stored login is not bound to a key (it was made before dpop: " + s.Mode + "); " + bind
	case s.Login == config.DPoPOff && s.Mode == config.DPoPAuto && p.realmDemands:
		return "the realm demands DPoP proofs of client " + p.cfg.ClientID + " and the stored login is not bound to a key; " + bind
	case s.Login == config.DPoPOn && s.Mode == config.DPoPAuto:
		return "the realm binds the access tokens of client " + p.cfg.ClientID + " to the login's key: they are DPoP tokens, which Bearer-only APIs refuse. " +
			"For Bearer ones, the Keycloak admin turns off the client's DPoP-bound tokens switch and uses the dpop-bind-enforcer with \"Bind only refresh token for public client\"; then sign in again"
	case s.Login == config.DPoPOn && s.Mode == config.DPoPRefresh:
		return "the stored login was made with dpop: on and serves DPoP access tokens; " + fmt.Sprintf("sign in again for Bearer ones: `%s`", loginCommand(p.name))
	case s.Login != config.DPoPOff && s.Mode == config.DPoPOff:
		return "the stored login is bound to a key; dpop: off takes effect at the next sign-in"
	}
	return ""
}

// loginCommand is the command that signs the profile in.
func loginCommand(name string) string {
	if name == config.DefaultProfile {
		return "kc-agent login"
	}
	return "kc-agent login --profile " + name
}
