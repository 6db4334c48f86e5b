package tokens

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/agent/cleartext"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
)

// The agent is the only writer of the store (logins and logouts go
// through it, session.Keeper, under the profile's refresh slot; without an
// agent, a command holds the one-agent lock), so a refresh need not read
// the store before it writes: what a crash needs is the read at load
// (ensureLoaded) and persist-before-publish below.

// retrySave saves a rotated token whose save failed before.
func (p *profile) retrySave(ctx context.Context, gen int) {
	p.mu.Lock()
	rec, st := p.rec, p.st
	p.mu.Unlock()
	err := st.Put(ctx, p.name, rec)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case gen != p.gen:
	case err == nil && p.rec.RefreshToken == rec.RefreshToken:
		p.persistPending = false
		p.lastErr = ""
		p.m.log.Info("saved the rotated offline token", "profile", p.name)
	case err != nil:
		p.persistRetryAt = p.m.now().Add(jitter(p.m.schedule().PersistRetry))
	}
}

// refresh runs one refresh grant. Called with p.sem held. The new offline
// token is written to the store before the new access token is published,
// and the old one is never used again.
func (p *profile) refresh(ctx context.Context, gen int, key string, scopes []string) error {
	p.mu.Lock()
	rec, st := p.rec, p.st
	p.mu.Unlock()
	if rec.RefreshToken == "" {
		return &Error{Code: CodeLoginRequired, Msg: fmt.Sprintf("profile %q is not logged in", p.name), Hint: loginHint(p.name)}
	}
	client, err := p.m.NewClient(ctx, p.cfg)
	if err == nil {
		client, err = p.withKey(ctx, rec, client)
	}
	var tok *oidc.Token
	if err == nil {
		tok, err = client.Refresh(ctx, rec.RefreshToken, scopes)
	}
	if err == nil && bound(tok) && p.wantsBearer(rec) {
		rec, tok, err = p.bearerAgain(ctx, gen, client, rec, tok, scopes)
	}
	if err != nil {
		return p.failed(gen, key, err)
	}
	now := p.m.now()
	rotated := tok.RefreshToken != "" && tok.RefreshToken != rec.RefreshToken
	var persistErr error
	if rotated {
		rec.RefreshToken = tok.RefreshToken
		rec.SavedAt = now.UTC()
		if !p.current(gen) {
			return errReloaded()
		}
		persistErr = st.Put(ctx, p.name, rec)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen {
		return errReloaded()
	}
	p.publishLocked(now, key, rec, tok, rotated, persistErr)
	return nil
}

func (p *profile) current(gen int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return gen == p.gen
}

// publishLocked makes a refresh's result the profile's state: the record
// with the new offline token (saved or, on persistErr, pending), and the
// new access token.
func (p *profile) publishLocked(now time.Time, key string, rec store.Record, tok *oidc.Token, rotated bool, persistErr error) {
	p.rec = rec // the old refresh token is dead (or will be): never reuse it
	sched := p.m.schedule()
	if persistErr != nil {
		p.persistPending = true
		p.persistRetryAt = now.Add(jitter(sched.PersistRetry))
		p.lastErr = "could not save the rotated offline token (kept in memory, retrying): " + persistErr.Error()
		p.m.log.Warn("saving the rotated offline token failed; keeping it in memory and retrying", "profile", p.name, "err", persistErr)
	} else if rotated {
		p.persistPending = false
	}
	lifetime := tok.ExpiresIn
	if lifetime <= 0 {
		lifetime = time.Minute
	}
	p.refreshes++
	c := &cached{
		Access: Access{Token: tok.AccessToken, Type: tokenType(tok.TokenType), ExpiresAt: now.Add(lifetime)},
		issued: now,
		seq:    p.refreshes,
	}
	ahead := lifetime
	if tok.IDToken != "" {
		idLifetime := jwtLifetime(tok.IDToken, lifetime)
		c.id = Access{Token: tok.IDToken, Type: "Bearer", ExpiresAt: now.Add(idLifetime)}
		ahead = min(ahead, idLifetime)
	}
	c.refreshAt = sched.refreshPoint(now, ahead)
	p.access[key] = c
	p.state = StateActive
	if !p.persistPending {
		p.lastErr, p.hint = "", ""
	}
	p.failures = 0
	p.lastRefresh = now
	p.m.log.Debug("refreshed", "profile", p.name, "scopes", key, "expires_in", lifetime, "rotated", rotated)
	p.scheduleLocked()
}

// jwtLifetime is a JWT's exp minus its iat: its lifetime measured by the
// issuer's clock alone, so a skewed local clock does not shorten or stretch
// it. The token came from the provider over TLS; it is read, not verified.
// Without usable claims the access token's lifetime stands in.
func jwtLifetime(jwt string, fallback time.Duration) time.Duration {
	var claims struct {
		Exp float64 `json:"exp"`
		Iat float64 `json:"iat"`
	}
	if !readClaims(jwt, &claims) || claims.Exp <= claims.Iat || claims.Iat <= 0 {
		return fallback
	}
	return time.Duration((claims.Exp - claims.Iat) * float64(time.Second))
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
		return errReloaded()
	}
	switch oidc.KindOf(err) {
	case oidc.KindScope:
		return p.scopeRefusedLocked(key, err)
	case oidc.KindLoginRequired, oidc.KindConfig:
		p.realmDemands = p.realmDemands || oidc.DPoPMissing(err)
		p.state = StateLoginRequired
		p.lastErr = err.Error()
		p.hint = oidc.HintOf(err)
		if oidc.KindOf(err) == oidc.KindLoginRequired {
			p.hint = loginHint(p.name)
		}
		p.access = map[string]*cached{}
		p.m.log.Warn("login required", "profile", p.name, "reason", err.Error())
		p.scheduleLocked() // stops the timer: nothing to do until a login
		return p.loginRequiredLocked()
	}
	p.lastErr = err.Error()
	p.hint = "kc-agent keeps serving the cached token until it expires and retries with backoff"
	p.degradedLocked()
	if r := cleartext.Refused(err); r != nil {
		// Nothing was sent. Log it once per destination every 10 s: the
		// retries would otherwise repeat it.
		p.hint = oidc.HintOf(err)
		if log, suppressed := p.foreign.Add(r); log {
			p.m.log.Warn("refused to send the offline token in the clear to a port another user listens on; will retry",
				"profile", p.name, "addr", r.Addr, "owner", r.Owner.String(), "similar_refusals_not_logged", suppressed)
		}
	} else {
		p.m.log.Warn("refresh failed; will retry", "profile", p.name, "attempt", p.failures, "err", err.Error())
	}
	p.scheduleLocked()
	return &Error{Code: CodeUnavailable, Msg: fmt.Sprintf("can not refresh profile %q: %v", p.name, err), Hint: p.hint}
}

// scopeRefusedLocked: the request's own scopes are the problem, not the
// login. Fail this request and leave the profile as it was.
func (p *profile) scopeRefusedLocked(key string, err error) error {
	scopes := key
	if scopes == "" {
		scopes = strings.Join(p.cfg.Scopes, " ")
	}
	msg := fmt.Sprintf("the identity provider refused the scopes %q for profile %q: %v", scopes, p.name, err)
	if key == "" {
		p.lastErr = msg
		p.hint = "fix the scopes of profile " + p.name + " in the config file"
		p.m.log.Warn("the profile's own scopes are refused", "profile", p.name, "scopes", scopes)
		return &Error{Code: CodeInvalidScope, Msg: msg, Hint: p.hint}
	}
	p.m.log.Info("scope refused for one request", "profile", p.name, "scopes", scopes)
	return &Error{Code: CodeInvalidScope, Msg: msg,
		Hint: "ask without --scope " + strings.ReplaceAll(key, " ", " --scope ") + ", or ask the Keycloak admin to add it to the client as an optional client scope"}
}
