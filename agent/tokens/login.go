package tokens

import (
	"context"
	"errors"
	"fmt"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
)

// The manager is the agent's keeper of logins (session.Keeper): the agent
// is the only writer of the store, and every write of a login happens
// while the profile's refresh slot is held, so no refresh of the login
// being replaced or removed runs meanwhile, and none starts from it after.

// ProfileConfig is the configured profile name, with defaults: what a
// sign-in the agent runs logs in to.
func (m *Manager) ProfileConfig(name string) (config.Profile, error) {
	p, err := m.profile(name)
	if err != nil {
		return config.Profile{}, err
	}
	return p.cfg, nil
}

// withSlot runs f with the profile's store while holding its refresh
// slot; f also sets what the profile knows of its login (under p.mu,
// before the slot is free: a refresh waiting for it must not start from
// the old login).
func (m *Manager) withSlot(ctx context.Context, name string, f func(p *profile, st store.Store) error) error {
	p, err := m.profile(name)
	if err != nil {
		return err
	}
	if !p.acquire(ctx) {
		return fmt.Errorf("gave up waiting for the profile's refresh to finish: %w", ctx.Err())
	}
	defer p.release()
	p.mu.Lock()
	st := p.st
	p.mu.Unlock()
	if st == nil {
		return &Error{Code: CodeConfig, Msg: fmt.Sprintf("profile %q has no usable store", name)}
	}
	return f(p, st)
}

// CheckWritable asks the profile's store whether a login could be kept.
func (m *Manager) CheckWritable(ctx context.Context, name string) error {
	p, err := m.profile(name)
	if err != nil {
		return err
	}
	p.mu.Lock()
	st := p.st
	p.mu.Unlock()
	if st == nil {
		return &Error{Code: CodeConfig, Msg: fmt.Sprintf("profile %q has no usable store: %s", name, p.lastErr)}
	}
	return st.CheckWritable(ctx)
}

// Replace keeps a new login's record for a profile, when accept agrees
// to replace the stored one (the newest this agent knows), and returns
// the record it replaced (empty if none), whose session the caller may
// end. When the record can't be stored, the undo accept returned runs,
// still under the slot.
func (m *Manager) Replace(ctx context.Context, name string, rec store.Record, accept func(store.Record) (func(), error)) (previous store.Record, err error) {
	err = m.withSlot(ctx, name, func(p *profile, st store.Store) error {
		previous = p.newest(ctx, st)
		undo, err := accept(previous)
		if err != nil {
			return err
		}
		if err := st.Put(ctx, name, rec); err != nil {
			if undo != nil {
				undo()
			}
			return err
		}
		// Served at once: the next token request refreshes from it.
		p.mu.Lock()
		p.forgetLocked()
		p.rec, p.loaded, p.known, p.state = rec, true, true, StateActive
		p.scheduleLocked()
		p.mu.Unlock()
		m.log.Info("new login stored", "profile", name, "user", rec.Username, "store", st.Describe())
		return nil
	})
	return previous, err
}

// Remove deletes a profile's login and returns the newest record of it
// (store.ErrNotFound when there was none): the one whose session is live.
func (m *Manager) Remove(ctx context.Context, name string) (rec store.Record, err error) {
	err = m.withSlot(ctx, name, func(p *profile, st store.Store) error {
		rec = p.newest(ctx, st)
		derr := st.Delete(ctx, name)
		if derr != nil && !errors.Is(derr, store.ErrNotFound) {
			return derr
		}
		p.mu.Lock()
		p.forgetLocked()
		p.loaded, p.lastErr = true, "not logged in"
		p.mu.Unlock()
		if rec.RefreshToken == "" {
			return store.ErrNotFound
		}
		m.log.Info("login removed", "profile", name, "user", rec.Username)
		return nil
	})
	return rec, err
}

// Describe names where the profile's logins are kept.
func (m *Manager) Describe(name string) string {
	p, err := m.profile(name)
	if err != nil {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st == nil {
		return ""
	}
	return p.st.Describe()
}

// newest is the login the profile runs on: the one in memory (a rotated
// token not yet saved is newer than the store's), else the stored one.
// Called with the refresh slot held.
func (p *profile) newest(ctx context.Context, st store.Store) store.Record {
	p.mu.Lock()
	rec := p.rec
	p.mu.Unlock()
	if rec.RefreshToken != "" {
		return rec
	}
	stored, err := st.Get(ctx, p.name)
	if err != nil {
		return store.Record{}
	}
	return stored
}

// forgetLocked drops what the profile knows of its login; a new
// generation starts, so results of older refreshes are thrown away.
func (p *profile) forgetLocked() {
	p.gen++
	p.loaded = false
	p.rec = store.Record{}
	p.access = map[string]*cached{}
	p.state = StateLoggedOut
	p.lastErr, p.hint = "", ""
	p.failures = 0
	p.persistPending = false
	p.key.drop()
	p.keyCheck, p.realmDemands = "", false
	if p.timer != nil {
		p.timer.Stop()
	}
}
