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
	"github.com/kc-agent/kc-agent/agent/dpop/tpmkey"
	"github.com/kc-agent/kc-agent/internal/privatefile"
)

// KeyStore keeps the DPoP key of each profile, apart from its token: a
// copy of the token store alone (a keychain export, a backup of the token
// file) then holds nothing that can be refreshed. Keys are crypto.Signers
// of either kind: a software key, kept whole in the store, or a key made
// in the TPM (tpmkey.Key), of which the store keeps only what the TPM
// wrapped for itself. Generate makes one of the kind the store's KeyMaker
// says; Get returns whichever kind was kept.
type KeyStore interface {
	// Generate makes a fresh key for a login. It is not kept until Put,
	// so a login that fails leaves the previous login's key in place.
	Generate() (crypto.Signer, error)
	// Put keeps key as profile's, replacing any earlier one.
	Put(ctx context.Context, profile string, key crypto.Signer) error
	// Get returns profile's key, or ErrNotFound. An error wrapping
	// ErrKeyUnusable says that what is stored is not a key this machine can
	// use (corrupt, exposed, another TPM's): only a new login helps. Any
	// other error (wrapping ErrUnavailable: the keychain or file could
	// not be read, the TPM is busy) may pass.
	Get(ctx context.Context, profile string) (crypto.Signer, error)
	// Delete forgets profile's key; ErrNotFound when there was none.
	Delete(ctx context.Context, profile string) error
	// Describe says where keys live, for status and doctor output.
	Describe() string
}

// ErrKeyUnusable marks a stored DPoP key that can never be used here: its
// data is not a key, its file is readable by others, or it is a TPM key
// that this machine's TPM does not load. A new login makes a new one.
var ErrKeyUnusable = errors.New("unusable DPoP key")

// keyError is a stored key that is not usable (kind ErrKeyUnusable) or
// can not be read right now (kind ErrUnavailable); Error is err's.
type keyError struct {
	kind, err error
}

func (e *keyError) Error() string   { return e.err.Error() }
func (e *keyError) Unwrap() []error { return []error{e.kind, e.err} }

func unusableKey(err error) error { return &keyError{ErrKeyUnusable, err} }

// KeysForProfile returns the key store beside the profile's token store:
// the keychain for keychain profiles, a file next to the token file for
// `store: file`. New keys are made where the profile's dpop_key says.
func KeysForProfile(p config.Profile) (KeyStore, error) {
	maker := KeyMaker{Mode: keyMode(p), TPM: TPMDevice()}
	switch p.Store {
	case config.StoreFile:
		dir, err := config.StateDir()
		if err != nil {
			return nil, err
		}
		return &FileKeys{Dir: filepath.Join(dir, "tokens"), Maker: maker}, nil
	case config.StoreKeychain, "":
		return &KeychainKeys{Keychain: NewKeychain(), Maker: maker}, nil
	}
	return nil, fmt.Errorf("unknown store %q", p.Store)
}

// keyMode is where a profile's new keys are made. `dpop_key: auto` picks
// a software key for `dpop: on`: that mode signs a proof for every API
// request, and a TPM signs one in tens of milliseconds (a request would
// wait for it). `dpop_key: tpm` still puts it in the TPM.
func keyMode(p config.Profile) string {
	if (p.DPoPKey == "" || p.DPoPKey == config.DPoPKeyAuto) && p.DPoPMode() == config.DPoPOn {
		return config.DPoPKeySoftware
	}
	return p.DPoPKey
}

// keyRecord is a stored key: a software key (Key), or a TPM's key as the
// TPM wrapped it (Public, Private), usable only in that TPM.
type keyRecord struct {
	Version int    `json:"v"`
	Kind    string `json:"kind"`
	Key     string `json:"key,omitempty"`     // software: dpop.MarshalKey
	Public  string `json:"public,omitempty"`  // TPM: TPM2B_PUBLIC, base64url
	Private string `json:"private,omitempty"` // TPM: TPM2B_PRIVATE, base64url
}

const softwareP256 = "software-p256"

func encodeKey(key crypto.Signer) ([]byte, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		s, err := dpop.MarshalKey(k)
		if err != nil {
			return nil, err
		}
		return json.Marshal(keyRecord{Version: 1, Kind: softwareP256, Key: s})
	case *tpmkey.Key:
		return json.Marshal(tpmRecord(k))
	}
	return nil, fmt.Errorf("this key store keeps software P-256 and TPM keys, not %T", key)
}

// decodeKey reads a stored key; a TPM's key is to be used with tpm.
func decodeKey(data []byte, tpm tpmkey.Device) (crypto.Signer, error) {
	var r keyRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, unusableKey(errors.New("the stored DPoP key is corrupt; run `kc-agent login` again"))
	}
	switch r.Kind {
	case softwareP256:
		k, err := dpop.ParseKey(r.Key)
		if err != nil {
			return nil, unusableKey(fmt.Errorf("%w; run `kc-agent login` again", err))
		}
		return k, nil
	case tpmP256:
		return fromTPMRecord(r, tpm)
	}
	return nil, unusableKey(errors.New("the stored DPoP key is corrupt; run `kc-agent login` again"))
}

// KeychainKeys keeps each profile's key as a second keychain item of the
// service, next to the token's.
type KeychainKeys struct {
	Keychain *Keychain
	Maker    KeyMaker
}

// KeyAccount is the keychain account of a profile's DPoP key.
func KeyAccount(profile string) string { return Account(profile) + "#dpop" }

func (k *KeychainKeys) Generate() (crypto.Signer, error) { return k.Maker.Generate() }

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
	return usable(decodeKey([]byte(secret), k.Maker.TPM))
}

func (k *KeychainKeys) Delete(ctx context.Context, profile string) error {
	return k.Keychain.call(ctx, "delete", func() error { return keyring.Delete(Service, KeyAccount(profile)) })
}

// FileKeys keeps each profile's key in an owner-only file beside its
// token file (`store: file`). Token files end in .json and key files in
// .dpop-key, so no profile name makes one the other.
type FileKeys struct {
	Dir   string
	Maker KeyMaker
}

func (f *FileKeys) path(profile string) string { return filepath.Join(f.Dir, profile+".dpop-key") }

func (f *FileKeys) Generate() (crypto.Signer, error) { return f.Maker.Generate() }

func (f *FileKeys) Describe() string { return "file " + f.Dir + " (owner only, opted in)" }

func (f *FileKeys) Put(ctx context.Context, profile string, key crypto.Signer) error {
	data, err := encodeKey(key)
	if err != nil {
		return err
	}
	return writePrivate(f.Dir, f.path(profile), data, "DPoP key file")
}

func (f *FileKeys) Get(ctx context.Context, profile string) (crypto.Signer, error) {
	data, err := os.ReadFile(f.path(profile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		// EMFILE, EIO, ESTALE on an NFS home...: the file is there and
		// may read fine at the next try.
		return nil, &keyError{ErrUnavailable, fmt.Errorf("reading DPoP key file: %w", err)}
	}
	var exposed *privatefile.ExposedError
	if err := privatefile.Check(f.path(profile)); errors.As(err, &exposed) {
		return nil, unusableKey(fmt.Errorf("DPoP key file %s is readable by others (%s); delete it and run `kc-agent login` again", f.path(profile), exposed.Detail))
	}
	return usable(decodeKey(data, f.Maker.TPM))
}

func (f *FileKeys) Delete(ctx context.Context, profile string) error {
	err := os.Remove(f.path(profile))
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotFound
	}
	return err
}
