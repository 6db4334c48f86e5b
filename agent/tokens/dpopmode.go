package tokens

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
)

// A profile's DPoP mode (config.Profile.DPoPMode) decides how a new login
// is made; the login's record (store.Record.DPoP) how it is refreshed.
// Keycloak binds the access tokens of a grant whenever a proof comes with
// the token request, unless the realm's dpop-bind-enforcer has "Bind only
// refresh token for public client" for the client; even then the first
// access token of a grant (the code exchange's) is bound.

// LoginMode is the DPoP mode a stored login was made in: config.DPoPOff
// when it is unbound, config.DPoPRefresh or config.DPoPOn when bound (a
// login bound before modes existed names none: it was made with on).
func LoginMode(rec store.Record) string {
	switch {
	case rec.KeyThumbprint == "":
		return config.DPoPOff
	case rec.DPoP == "":
		return config.DPoPOn
	}
	return rec.DPoP
}

// bindsNewLogin says whether a new login of p is made with a key. auto
// binds only where discovery advertises DPoP and the realm demands proofs
// of the client (its dpop-bind-enforcer applies): binding elsewhere would
// make the access tokens DPoP tokens that Bearer APIs refuse, and only a
// new sign-in could undo it.
func bindsNewLogin(ctx context.Context, p config.Profile, c *oidc.Client) (bool, error) {
	switch p.DPoPMode() {
	case config.DPoPOff:
		return false, nil
	case config.DPoPRefresh, config.DPoPOn:
		return true, nil
	}
	if c == nil || !c.AdvertisesDPoP() {
		return false, nil
	}
	return c.ProbeDPoP(ctx)
}

// SettleLogin decides the mode a new bound login is kept in, from tok,
// the grant's token, before the sign-in is reported done. With on it is
// on. With refresh and auto a test refresh (two at most) shows whether
// the realm serves Bearer access tokens to a bound login: then it is
// refresh. If they stay bound, auto keeps the login as on (the realm
// demands bound access tokens of this client: no Bearer API could work
// with it anyway) and refresh fails with the error that names the realm
// setting. The token returned holds the newest offline token, also when
// err is set (the caller ends its session).
func SettleLogin(ctx context.Context, p config.Profile, c Refresher, clientID string, tok *oidc.Token) (*oidc.Token, string, error) {
	mode := p.DPoPMode()
	if mode == config.DPoPOn {
		return tok, config.DPoPOn, nil
	}
	last := tok
	for range 2 {
		next, err := c.Refresh(ctx, last.RefreshToken, nil)
		if err != nil {
			return last, "", err
		}
		if next.RefreshToken == "" {
			next.RefreshToken = last.RefreshToken
		}
		last = next
		if !bound(next) {
			return last, config.DPoPRefresh, nil
		}
	}
	if mode == config.DPoPAuto {
		return last, config.DPoPOn, nil
	}
	return last, "", oidc.BoundAccessError(clientID)
}

// bound says whether tok's access token is bound to a key (type DPoP).
func bound(tok *oidc.Token) bool { return tokenType(tok.TokenType) != "Bearer" }

// wantsBearer: a login made in refresh mode serves Bearer access tokens
// only, unless the profile now says on (which accepts bound ones).
func (p *profile) wantsBearer(rec store.Record) bool {
	return LoginMode(rec) == config.DPoPRefresh && p.cfg.DPoPMode() != config.DPoPOn
}

// bearerAgain: a refresh-mode login's refresh gave tok, a bound access
// token, which is never served as Bearer. Refresh once more (keeping the
// offline token tok rotated to first); a second bound one is the realm's
// doing, and an error that names its setting.
func (p *profile) bearerAgain(ctx context.Context, gen int, client Refresher, rec store.Record, tok *oidc.Token, scopes []string) (store.Record, *oidc.Token, error) {
	p.m.log.Info("the access token came back bound to the key; refreshing once more for a Bearer one", "profile", p.name)
	rec = p.keepRotated(ctx, gen, rec, tok)
	next, err := client.Refresh(ctx, rec.RefreshToken, scopes)
	if err != nil {
		return rec, nil, err
	}
	if bound(next) {
		p.keepRotated(ctx, gen, rec, next)
		return rec, nil, oidc.BoundAccessError(p.cfg.ClientID)
	}
	return rec, next, nil
}

// keepRotated makes tok's offline token, if it rotated, the login's (in
// the store, else pending in memory) before it is used again.
func (p *profile) keepRotated(ctx context.Context, gen int, rec store.Record, tok *oidc.Token) store.Record {
	if tok.RefreshToken == "" || tok.RefreshToken == rec.RefreshToken {
		return rec
	}
	rec.RefreshToken = tok.RefreshToken
	rec.SavedAt = p.m.now().UTC()
	p.mu.Lock()
	st := p.st
	p.mu.Unlock()
	err := st.Put(ctx, p.name, rec)
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen == p.gen {
		p.rec = rec
		if err != nil {
			p.persistPending = true
			p.persistRetryAt = p.m.now().Add(jitter(p.m.schedule().PersistRetry))
		}
	}
	return rec
}

// withKey is withLoginKey, noting for status whether the login's key was
// found and matched.
func (p *profile) withKey(ctx context.Context, rec store.Record, client Refresher) (Refresher, error) {
	c, err := withLoginKey(ctx, p.name, p.cfg, rec, client)
	if rec.KeyThumbprint != "" {
		p.mu.Lock()
		switch {
		case err == nil:
			p.keyCheck = KeyMatches
		case oidc.KindOf(err) == oidc.KindLoginRequired:
			p.keyCheck = KeyUnusable
		}
		p.mu.Unlock()
	}
	return c, err
}

// What status says of a bound login's key (DPoPStatus.Key).
const (
	// KeyMatches: the stored key is the one the login is bound to.
	KeyMatches = "matches"
	// KeyUnusable: the stored key is missing or another one.
	KeyUnusable = "missing or another key"
	// KeyOtherToken: the offline token is bound to another key than the
	// one the login's record names.
	KeyOtherToken = "the offline token is bound to another key"
)

// BoundJKT is cnf.jkt of a JWT-shaped token ("" if none): the thumbprint
// of the key it is bound to. Read, not verified.
func BoundJKT(jwt string) string {
	var claims struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if !readClaims(jwt, &claims) {
		return ""
	}
	return claims.Cnf.JKT
}

// readClaims decodes a JWT's payload into v, unverified (tokens come
// from the provider over TLS, and only read here). False when jwt is not
// JWT-shaped or its payload is not JSON.
func readClaims(jwt string, v any) bool {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	return err == nil && json.Unmarshal(payload, v) == nil
}
