package tokens

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/agent/cleartext"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
)

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

// retrySave saves a rotated token whose save failed before.
func (p *profile) retrySave(ctx context.Context, gen int) {
	p.mu.Lock()
	rec, st, storedRT := p.rec, p.st, p.storedRT
	p.mu.Unlock()
	replaced, err := p.saveRotated(ctx, st, rec, storedRT)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case gen != p.gen:
	case replaced:
		p.replacedLocked()
	case err == nil && p.rec.RefreshToken == rec.RefreshToken:
		p.storedRT = rec.RefreshToken
		p.persistPending = false
		p.lastErr = ""
		p.m.log.Info("saved the rotated offline token", "profile", p.name)
	case err != nil:
		p.persistRetryAt = p.m.now().Add(jitter(p.m.schedule().PersistRetry))
	}
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
	return &Error{Code: CodeUnavailable, Msg: "the login changed during a refresh; try again"}
}

// followStore is the read before every refresh: with rotation, refreshing
// with a token someone else already replaced ends the session, so when the
// store holds a newer token than this agent saved, that one is used. It
// returns the record to refresh with, or an error when the login is gone
// or was replaced by another one.
func (p *profile) followStore(ctx context.Context, gen int, rec store.Record, storedRT string) (store.Record, error) {
	p.mu.Lock()
	st := p.st
	p.mu.Unlock()
	if st == nil {
		return rec, nil
	}
	cur, err := st.Get(ctx, p.name)
	switch {
	case errors.Is(err, store.ErrNotFound),
		err == nil && cur.RefreshToken != storedRT && cur.RefreshToken != rec.RefreshToken &&
			(cur.Issuer != p.cfg.Issuer || cur.ClientID != p.cfg.ClientID):
		p.mu.Lock()
		defer p.mu.Unlock()
		if gen != p.gen {
			return rec, errReloaded()
		}
		return rec, p.replacedLocked()
	case err == nil && cur.RefreshToken != storedRT && cur.RefreshToken != rec.RefreshToken:
		p.m.log.Info("the store holds a newer offline token than this agent saved; using it", "profile", p.name)
		p.mu.Lock()
		if gen == p.gen {
			p.rec, p.storedRT, p.persistPending = cur, cur.RefreshToken, false
		}
		p.mu.Unlock()
		return cur, nil
	}
	// Any other read error: go on with the token in memory, the newest
	// this agent knows.
	return rec, nil
}

// refresh runs one refresh grant. Called with p.sem held. The new offline
// token is written to the store before the new access token is published,
// and the old one is never used again.
func (p *profile) refresh(ctx context.Context, gen int, key string, scopes []string) error {
	p.mu.Lock()
	rec, storedRT, st := p.rec, p.storedRT, p.st
	p.mu.Unlock()
	if rec.RefreshToken == "" {
		return &Error{Code: CodeLoginRequired, Msg: fmt.Sprintf("profile %q is not logged in", p.name), Hint: loginHint(p.name)}
	}
	rec, err := p.followStore(ctx, gen, rec, storedRT)
	if err != nil {
		return err
	}
	p.mu.Lock()
	storedRT = p.storedRT // followStore may have adopted the stored one
	p.mu.Unlock()

	client, err := p.m.NewClient(ctx, p.cfg)
	if err == nil {
		client, err = withLoginKey(ctx, p.name, p.cfg, rec, client)
	}
	var tok *oidc.Token
	if err == nil {
		tok, err = client.Refresh(ctx, rec.RefreshToken, scopes)
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
		var replaced bool
		replaced, persistErr = p.saveRotated(ctx, st, rec, storedRT)
		if replaced {
			p.mu.Lock()
			defer p.mu.Unlock()
			if gen != p.gen {
				return errReloaded()
			}
			return p.replacedLocked()
		}
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
	if rotated && persistErr == nil {
		p.storedRT = rec.RefreshToken
	}
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
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fallback
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fallback
	}
	var claims struct {
		Exp float64 `json:"exp"`
		Iat float64 `json:"iat"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= claims.Iat || claims.Iat <= 0 {
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
