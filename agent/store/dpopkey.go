package store

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zalando/go-keyring"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/internal/atomicfile"
	"github.com/kc-agent/kc-agent/internal/privatefile"
)

// KeyStore keeps the DPoP key of each profile, apart from its token: a
// copy of the token store alone (a keychain export, a backup of the token
// file) then holds nothing that can be refreshed. Keys are crypto.Signers
// so a store whose keys never leave hardware (a TPM, a platform key store)
// can take the place of the software one: Generate makes the key there and
// Put keeps only a reference to it.
type KeyStore interface {
	// Generate makes a fresh key for a login. It is not kept until Put,
	// so a login that fails leaves the previous login's key in place.
	Generate() (crypto.Signer, error)
	// Put keeps key as profile's, replacing any earlier one.
	Put(ctx context.Context, profile string, key crypto.Signer) error
	// Get returns profile's key, or ErrNotFound.
	Get(ctx context.Context, profile string) (crypto.Signer, error)
	// Delete forgets profile's key; ErrNotFound when there was none.
	Delete(ctx context.Context, profile string) error
	// Describe says where keys live, for status and doctor output.
	Describe() string
}

// KeysForProfile returns the key store beside the profile's token store:
// the keychain for keychain profiles, a file next to the token file for
// `store: file`.
func KeysForProfile(p config.Profile) (KeyStore, error) {
	switch p.Store {
	case config.StoreFile:
		dir, err := config.StateDir()
		if err != nil {
			return nil, err
		}
		return &FileKeys{Dir: filepath.Join(dir, "tokens")}, nil
	case config.StoreKeychain, "":
		return &KeychainKeys{Keychain: NewKeychain()}, nil
	}
	return nil, fmt.Errorf("unknown store %q", p.Store)
}

// keyRecord is a stored software key. Kind leaves room for a record that
// names a hardware key instead of holding one.
type keyRecord struct {
	Version int    `json:"v"`
	Kind    string `json:"kind"`
	Key     string `json:"key"` // dpop.MarshalKey
}

const softwareP256 = "software-p256"

func encodeKey(key crypto.Signer) ([]byte, error) {
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("this key store keeps software P-256 keys only")
	}
	s, err := dpop.MarshalKey(ec)
	if err != nil {
		return nil, err
	}
	return json.Marshal(keyRecord{Version: 1, Kind: softwareP256, Key: s})
}

func decodeKey(data []byte) (crypto.Signer, error) {
	var r keyRecord
	if err := json.Unmarshal(data, &r); err != nil || r.Kind != softwareP256 {
		return nil, errors.New("the stored DPoP key is corrupt; run `kc-agent login` again")
	}
	k, err := dpop.ParseKey(r.Key)
	if err != nil {
		return nil, fmt.Errorf("%w; run `kc-agent login` again", err)
	}
	return k, nil
}

// KeychainKeys keeps each profile's key as a second keychain item of the
// service, next to the token's.
type KeychainKeys struct{ Keychain *Keychain }

// KeyAccount is the keychain account of a profile's DPoP key.
func KeyAccount(profile string) string { return Account(profile) + "#dpop" }

func (k *KeychainKeys) Generate() (crypto.Signer, error) { return dpop.NewKey() }

func (k *KeychainKeys) Describe() string { return k.Keychain.Describe() }

func (k *KeychainKeys) Put(ctx context.Context, profile string, key crypto.Signer) error {
	data, err := encodeKey(key)
	if err != nil {
		return err
	}
	return k.Keychain.call(ctx, "write", func() error { return keyring.Set(Service, KeyAccount(profile), string(data)) })
}

func (k *KeychainKeys) Get(ctx context.Context, profile string) (crypto.Signer, error) {
	var secret string
	err := k.Keychain.call(ctx, "read", func() error {
		var err error
		secret, err = keyring.Get(Service, KeyAccount(profile))
		return err
	})
	if err != nil {
		return nil, err
	}
	return decodeKey([]byte(secret))
}

func (k *KeychainKeys) Delete(ctx context.Context, profile string) error {
	return k.Keychain.call(ctx, "delete", func() error { return keyring.Delete(Service, KeyAccount(profile)) })
}

// FileKeys keeps each profile's key in an owner-only file beside its
// token file (`store: file`). Token files end in .json and key files in
// .dpop-key, so no profile name makes one the other.
type FileKeys struct{ Dir string }

func (f *FileKeys) path(profile string) string { return filepath.Join(f.Dir, profile+".dpop-key") }

func (f *FileKeys) Generate() (crypto.Signer, error) { return dpop.NewKey() }

func (f *FileKeys) Describe() string { return "file " + f.Dir + " (owner only, opted in)" }

func (f *FileKeys) Put(ctx context.Context, profile string, key crypto.Signer) error {
	data, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return fmt.Errorf("creating token directory: %w", err)
	}
	if err := privatefile.ProtectDir(f.Dir); err != nil {
		return fmt.Errorf("securing token directory: %w", err)
	}
	if err := atomicfile.Write(f.path(profile), data, 0o600); err != nil {
		return fmt.Errorf("writing DPoP key file: %w", err)
	}
	return nil
}

func (f *FileKeys) Get(ctx context.Context, profile string) (crypto.Signer, error) {
	data, err := os.ReadFile(f.path(profile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading DPoP key file: %w", err)
	}
	var exposed *privatefile.ExposedError
	if err := privatefile.Check(f.path(profile)); errors.As(err, &exposed) {
		return nil, fmt.Errorf("DPoP key file %s is readable by others (%s); delete it and run `kc-agent login` again", f.path(profile), exposed.Detail)
	}
	return decodeKey(data)
}

func (f *FileKeys) Delete(ctx context.Context, profile string) error {
	err := os.Remove(f.path(profile))
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotFound
	}
	return err
}
