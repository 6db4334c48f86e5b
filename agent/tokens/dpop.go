package tokens

import (
	"context"
	"crypto"
	"errors"
	"fmt"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
)

// KeysFor is where the manager finds a bound login's DPoP key (a seam
// for tests).
var KeysFor = store.KeysForProfile

// prover is a provider client that can prove its requests with a key
// (*oidc.Client).
type prover interface {
	WithDPoP(key crypto.Signer) *oidc.Client
}

// withLoginKey returns the client to refresh rec with: for a login bound
// to a key (made with dpop: on), one that proves every request with the
// key the record names; for an unbound login, client as it is. The
// binding is the login's, not the profile's: turning dpop off does not
// break a bound login, it takes effect at the next one.
func withLoginKey(ctx context.Context, name string, p config.Profile, rec store.Record, client Refresher) (Refresher, error) {
	if rec.KeyThumbprint == "" {
		return client, nil
	}
	pr, ok := client.(prover)
	if !ok {
		return client, nil // a test's fake provider: it checks no proofs
	}
	key, err := loginKey(ctx, name, p, rec)
	if err != nil {
		return nil, err
	}
	return pr.WithDPoP(key), nil
}

// loginKey loads the key rec is bound to. A key that is missing, is not
// usable here (store.ErrKeyUnusable) or is another one is login_required:
// the login can never be refreshed again, and no retry will change that.
// Any other error (the keychain or key file could not be read, the TPM is
// busy) is transient: the refresh is retried with backoff.
func loginKey(ctx context.Context, name string, p config.Profile, rec store.Record) (crypto.Signer, error) {
	ks, err := KeysFor(p)
	if err != nil {
		return nil, &oidc.Error{Kind: oidc.KindConfig, Msg: err.Error()}
	}
	key, err := ks.Get(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, &oidc.Error{Kind: oidc.KindLoginRequired,
			Msg: fmt.Sprintf("the login of profile %q is bound to a DPoP key that is missing from %s (restored from a backup without it?), and can't be refreshed without it", name, ks.Describe())}
	case errors.Is(err, store.ErrKeyUnusable):
		return nil, &oidc.Error{Kind: oidc.KindLoginRequired, Msg: "can not use the login's DPoP key", Err: err}
	case err != nil:
		return nil, &oidc.Error{Kind: oidc.KindTransient, Msg: "can not read the login's DPoP key (will retry)", Err: err}
	}
	if jkt, _ := dpop.Thumbprint(key); jkt != rec.KeyThumbprint {
		return nil, &oidc.Error{Kind: oidc.KindLoginRequired,
			Msg: fmt.Sprintf("the login of profile %q is bound to another DPoP key than the one in %s", name, ks.Describe())}
	}
	return key, nil
}

// NewLoginKey is the key a new login of p is made with through c: a
// fresh one from the profile's key store where the mode binds logins
// (bindsNewLogin), nil (no proofs) where it does not. It is kept only by
// KeepLoginKey, once the login is.
func NewLoginKey(ctx context.Context, p config.Profile, c *oidc.Client) (crypto.Signer, error) {
	if bind, err := bindsNewLogin(ctx, p, c); !bind || err != nil {
		return nil, err
	}
	ks, err := KeysFor(p)
	if err != nil {
		return nil, err
	}
	key, err := ks.Generate()
	if err != nil {
		return nil, fmt.Errorf("making the login's DPoP key: %w", err)
	}
	return key, nil
}

// BindRecord names in rec the key its login was made with (nil: none,
// the login is unbound) and the mode it was settled in (SettleLogin).
func BindRecord(key crypto.Signer, mode string, rec *store.Record) error {
	if key == nil {
		return nil
	}
	jkt, err := dpop.Thumbprint(key)
	if err != nil {
		return err
	}
	rec.KeyThumbprint, rec.DPoP = jkt, mode
	return nil
}

// KeySwap is the key store's side of a login replacing another: the new
// login's key goes in just before its record, under the profile's slot
// (a kept token always has its key beside it, and no refresh of the login
// it replaces runs in between), and comes out again if the record could
// not be stored.
type KeySwap struct {
	ks   store.KeyStore
	name string
	key  crypto.Signer // the new login's; nil: it is unbound
	// old is what the store held before (nil: nothing, or unreadable:
	// oldErr), replaced the old login's key when it is the one prev names.
	old, replaced crypto.Signer
	oldErr        error
}

// SwapLoginKey is called where a login made with key (nil: unbound)
// replaces prev, just before its record is stored: it reads the key prev
// is bound to (Replaced), then stores key over it. Undo puts the old key
// back when storing the record failed; Done, once it is stored, deletes
// the old key when the new login is unbound (a replaced login's key, like
// a logged-out one's, must not outlive it).
func SwapLoginKey(ctx context.Context, name string, p config.Profile, prev store.Record, key crypto.Signer) (*KeySwap, error) {
	ks, err := KeysFor(p)
	if err != nil {
		return nil, err
	}
	s := &KeySwap{ks: ks, name: name, key: key}
	if key == nil && prev.KeyThumbprint == "" {
		return s, nil // nothing to read: Done deletes whatever is there
	}
	s.old, s.oldErr = ks.Get(ctx, name)
	if s.old != nil {
		if jkt, _ := dpop.Thumbprint(s.old); jkt == prev.KeyThumbprint && jkt != "" {
			s.replaced = s.old
		}
	}
	if key == nil {
		return s, nil
	}
	if err := ks.Put(ctx, name, key); err != nil {
		return nil, fmt.Errorf("could not store the login's DPoP key: %w", err)
	}
	return s, nil
}

// Replaced is the replaced login's key, read before it was overwritten
// (nil when that login was unbound or its key was not there), to end its
// session with.
func (s *KeySwap) Replaced() crypto.Signer { return s.replaced }

// Undo restores the key store as it was before SwapLoginKey: the old key
// back, or no key where there was none.
func (s *KeySwap) Undo(ctx context.Context) error {
	switch {
	case s.key == nil:
		return nil
	case s.old != nil:
		return s.ks.Put(ctx, s.name, s.old)
	case errors.Is(s.oldErr, store.ErrNotFound):
		return s.remove(ctx)
	}
	return fmt.Errorf("the key store held a key that could not be read (%v), and the new login's key replaced it", s.oldErr)
}

// remove deletes the profile's key.
func (s *KeySwap) remove(ctx context.Context) error {
	if err := s.ks.Delete(ctx, s.name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// Done finishes the swap once the new login is stored: an unbound login
// leaves no key behind it.
func (s *KeySwap) Done(ctx context.Context) error {
	if s.key != nil {
		return nil
	}
	if err := s.remove(ctx); err != nil {
		return fmt.Errorf("could not delete the replaced login's DPoP key: %w", err)
	}
	return nil
}

// LogoutClient is the client that ends rec's session: one that proves
// its requests with the login's key when the login is bound. Without
// its key a bound login is useless anyway; the plain client then tries.
func LogoutClient(ctx context.Context, name string, p config.Profile, rec store.Record, client *oidc.Client) *oidc.Client {
	if rec.KeyThumbprint == "" {
		return client
	}
	key, err := loginKey(ctx, name, p, rec)
	if err != nil {
		return client
	}
	return client.WithDPoP(key)
}

// ForgetLoginKey deletes the profile's DPoP key (logout). Without it no
// copy of the login's token can be refreshed, wherever it ended up.
func ForgetLoginKey(ctx context.Context, name string, p config.Profile) error {
	ks, err := KeysFor(p)
	if err != nil {
		return err
	}
	if err := ks.Delete(ctx, name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("could not delete the login's DPoP key: %w", err)
	}
	return nil
}
