package session

import (
	"context"
	"errors"
	"io"

	"github.com/kc-agent/kc-agent/agent/store"
)

// Local is the service of a command that signs in or logs out itself
// because no agent runs; the command holds the one-agent lock while it
// uses it. warn receives the file store's warnings.
func Local(profile func(string) (Profile, error), warn io.Writer) *Service {
	return New(profile, StoreKeeper{Store: func(name string) (store.Store, error) {
		p, err := profile(name)
		if err != nil {
			return nil, err
		}
		return store.ForProfile(p.Config, warn)
	}}, nil)
}

// StoreKeeper keeps logins in the profiles' stores directly: the keeper of
// a command that runs a sign-in or logout itself because no agent runs.
// The command holds the one-agent lock throughout, so no agent can start
// and refresh a login it is replacing or removing.
type StoreKeeper struct {
	// Store is the store of a profile.
	Store func(name string) (store.Store, error)
}

// CheckWritable asks the profile's store.
func (k StoreKeeper) CheckWritable(ctx context.Context, name string) error {
	st, err := k.Store(name)
	if err != nil {
		return err
	}
	return st.CheckWritable(ctx)
}

// Replace writes rec over the stored login, when accept agrees.
func (k StoreKeeper) Replace(ctx context.Context, name string, rec store.Record, accept func(store.Record) (func(), error)) (store.Record, error) {
	st, err := k.Store(name)
	if err != nil {
		return store.Record{}, err
	}
	previous, err := st.Get(ctx, name)
	if err != nil {
		// Unreadable is as good as none: the new login replaces it.
		previous = store.Record{}
	}
	undo, err := accept(previous)
	if err != nil {
		return store.Record{}, err
	}
	if err := st.Put(ctx, name, rec); err != nil {
		if undo != nil {
			undo()
		}
		return store.Record{}, err
	}
	return previous, nil
}

// Remove deletes the stored login and returns it.
func (k StoreKeeper) Remove(ctx context.Context, name string) (store.Record, error) {
	st, err := k.Store(name)
	if err != nil {
		return store.Record{}, err
	}
	rec, err := st.Get(ctx, name)
	if err != nil {
		return store.Record{}, err
	}
	if err := st.Delete(ctx, name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Record{}, err
	}
	return rec, nil
}

// Describe names the profile's store.
func (k StoreKeeper) Describe(name string) string {
	st, err := k.Store(name)
	if err != nil {
		return ""
	}
	return st.Describe()
}
