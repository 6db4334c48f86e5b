package store

import (
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"os"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/dpop/tpmkey"
)

// TPMEnv names the TPM kc-agent uses, in place of tpmkey.DefaultPath: a
// device path, or mssim:127.0.0.1:PORT for a TPM simulator such as swtpm
// (tests only: a simulator's keys are software keys). A machine's TPM is a
// fact of the machine, not of a profile, and a config file may be shared
// between machines (a home directory on NFS), so this is no config option.
const TPMEnv = "KC_AGENT_TPM"

// TPMDevice is the TPM this process uses.
func TPMDevice() tpmkey.Device { return tpmkey.Device(os.Getenv(TPMEnv)) }

// KeyMaker makes a store's new keys where the profile's dpop_key says.
// Its zero value is auto with the default TPM.
type KeyMaker struct {
	// Mode is config.DPoPKeyAuto (or ""), DPoPKeyTPM or DPoPKeySoftware.
	Mode string
	// TPM is the TPM to make keys in and to use stored TPM keys with.
	TPM tpmkey.Device
}

// Generate makes a key: in the TPM with dpop_key: tpm (or an error that
// says why not), in software with software, and with auto in the TPM when
// it opens and makes a P-256 key, else in software.
func (m KeyMaker) Generate() (crypto.Signer, error) {
	switch m.Mode {
	case config.DPoPKeySoftware:
		return dpop.NewKey()
	case config.DPoPKeyTPM:
		k, err := m.TPM.Generate()
		if err != nil {
			return nil, fmt.Errorf("dpop_key: tpm: %w; set dpop_key: auto (or software) for this profile to use a software key on this machine", err)
		}
		return k, nil
	}
	if k, err := m.TPM.Generate(); err == nil {
		return k, nil
	}
	return dpop.NewKey()
}

const tpmP256 = "tpm-p256"

func tpmRecord(k *tpmkey.Key) keyRecord {
	pub, priv := k.Blobs()
	return keyRecord{Version: 1, Kind: tpmP256,
		Public:  base64.RawURLEncoding.EncodeToString(pub),
		Private: base64.RawURLEncoding.EncodeToString(priv)}
}

func fromTPMRecord(r keyRecord, tpm tpmkey.Device) (crypto.Signer, error) {
	pub, err1 := base64.RawURLEncoding.DecodeString(r.Public)
	priv, err2 := base64.RawURLEncoding.DecodeString(r.Private)
	if err := errors.Join(err1, err2); err != nil {
		return nil, unusableKey(errors.New("the stored TPM DPoP key is corrupt; run `kc-agent login` again"))
	}
	k, err := tpm.Load(pub, priv)
	if err != nil {
		return nil, unusableKey(fmt.Errorf("%w; run `kc-agent login` again", err))
	}
	return k, nil
}

// usable passes on what decodeKey returned, once a TPM key is known to
// load in this machine's TPM: a key another TPM made (the state directory
// and keychain copied from another machine) is ErrKeyUnusable, which asks
// for a new login, never a signature failure at every refresh; a TPM that
// can't be used right now is ErrUnavailable, so that the agent retries
// later rather than ask for a new login.
func usable(key crypto.Signer, err error) (crypto.Signer, error) {
	k, ok := key.(*tpmkey.Key)
	if err != nil || !ok {
		return key, err
	}
	var unavailable *tpmkey.UnavailableError
	switch err := k.Check(); {
	case errors.Is(err, tpmkey.ErrOtherTPM):
		return nil, unusableKey(fmt.Errorf("%w; run `kc-agent login` again to make a key in this machine's TPM", err))
	case errors.As(err, &unavailable) && errors.Is(err, os.ErrNotExist):
		return nil, unusableKey(fmt.Errorf("the login's DPoP key is in a TPM, and this machine has none (%w); run `kc-agent login` again", err))
	case err != nil:
		return nil, &keyError{ErrUnavailable, err}
	}
	return k, nil
}

// KeyKind says where a DPoP key lives, for status and doctor: "tpm" (made
// in this machine's TPM, not exportable) or "software" (kept whole in the
// key store).
func KeyKind(key crypto.Signer) string {
	if _, ok := key.(*tpmkey.Key); ok {
		return "tpm"
	}
	return "software"
}
