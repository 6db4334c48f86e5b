package tokens

import (
	"context"
	"errors"
	"fmt"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
)

// ProfileConfig is the configured profile name, with defaults: what a
// sign-in the agent runs logs in to.
func (m *Manager) ProfileConfig(name string) (config.Profile, error) {
	p, err := m.profile(name)
	if err != nil {
		return config.Profile{}, err
	}
	return p.cfg, nil
}

// StoreLogin keeps a new login's record for a profile: written to the
// store while the profile's refresh slot is held (no refresh of the old
// login runs meanwhile), then the profile starts afresh from it. It
// returns the record it replaced (empty if none), whose session the
// caller may end.
func (m *Manager) StoreLogin(ctx context.Context, name string, rec store.Record) (previous store.Record, err error) {
	p, err := m.profile(name)
	if err != nil {
		return store.Record{}, err
	}
	if !p.acquire(ctx) {
		return store.Record{}, fmt.Errorf("gave up waiting for the profile's refresh to finish: %w", ctx.Err())
	}
	p.mu.Lock()
	st := p.st
	p.mu.Unlock()
	if st == nil {
		p.release()
		return store.Record{}, &Error{Code: CodeConfig, Msg: fmt.Sprintf("profile %q has no usable store", name)}
	}
	previous, gerr := st.Get(ctx, name)
	if gerr != nil && !errors.Is(gerr, store.ErrNotFound) {
		previous = store.Record{}
	}
	err = st.Put(ctx, name, rec)
	p.release()
	if err != nil {
		return store.Record{}, err
	}
	m.log.Info("new login stored", "profile", name, "user", rec.Username, "store", st.Describe())
	return previous, m.Reload(name)
}
