// Package tpmkey keeps a login's DPoP key in a TPM 2.0: a P-256 signing
// key made by the TPM under its storage root key, that never leaves it
// (fixedTPM, fixedParent, sensitiveDataOrigin). What is stored is the
// key's public part and its private part wrapped by the storage root key:
// a blob only that TPM can load. A copy of it, with the whole state
// directory and keychain, signs nothing on another machine.
//
// The storage root key is the TCG's ECC P-256 SRK, recreated from the
// owner hierarchy's seed on every use (the same key each time); nothing is
// made persistent in the TPM, so kc-agent leaves no handles behind.
package tpmkey

import (
	"crypto"
	"crypto/ecdsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// Device is the TPM keys are made in and used with: a device path
// ("" means DefaultPath), or mssim:HOST:PORT for a simulator on loopback
// (tests only).
type Device string

func (d Device) String() string {
	if d == "" {
		return DefaultPath
	}
	return string(d)
}

// open connects to the TPM.
func (d Device) open() (transport.TPMCloser, error) {
	var t transport.TPMCloser
	var err error
	if addr, ok := strings.CutPrefix(string(d), mssimPrefix); ok {
		t, err = openMssim(addr)
	} else {
		t, err = openDevice(d.String())
	}
	if err != nil {
		return nil, err
	}
	return retrying{t}, nil
}

// keyTemplate is the DPoP key: P-256, ECDSA with SHA-256 only, made in
// the TPM and bound to it and to its parent, usable with an empty auth
// value (see the README on why no auth value).
var keyTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		SignEncrypt:         true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme: tpm2.TPMTECCScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
		KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
	}),
}

// srk makes the storage root key (the same one every time) and returns
// it with a function that flushes it.
func srk(t transport.TPM) (tpm2.NamedHandle, func(), error) {
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.ECCSRKTemplate)}.Execute(t)
	if err != nil {
		return tpm2.NamedHandle{}, nil, fmt.Errorf("making the TPM's storage root key (is an owner password set?): %w", err)
	}
	flush := func() { tpm2.FlushContext{FlushHandle: rsp.ObjectHandle}.Execute(t) }
	return tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, flush, nil
}

// Generate makes a new key in the TPM.
func (d Device) Generate() (*Key, error) {
	t, err := d.open()
	if err != nil {
		return nil, &UnavailableError{Device: d, Err: err}
	}
	defer t.Close()
	parent, flush, err := srk(t)
	if err != nil {
		return nil, &UnavailableError{Device: d, Err: err}
	}
	defer flush()
	rsp, err := tpm2.Create{ParentHandle: parent, InPublic: tpm2.New2B(keyTemplate)}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("making a key in the TPM: %w", err)
	}
	return d.Load(tpm2.Marshal(rsp.OutPublic), tpm2.Marshal(rsp.OutPrivate))
}

// Key is a P-256 key that lives in a TPM. It holds the key's public part
// and its private part as wrapped by the TPM; each Sign loads it there.
type Key struct {
	dev    Device
	pub    []byte // TPM2B_PUBLIC
	priv   []byte // TPM2B_PRIVATE, encrypted by the TPM's storage root key
	public *ecdsa.PublicKey
	inPub  tpm2.TPM2BPublic
	inPriv tpm2.TPM2BPrivate
}

// Load makes a Key of stored blobs (what Blobs returned) without asking
// the TPM: it checks that the public part is a fixed, TPM-made P-256
// signing key. Whether the TPM can load the private part shows at Sign.
func (d Device) Load(pub, priv []byte) (*Key, error) {
	inPub, err := tpm2.Unmarshal[tpm2.TPM2BPublic](pub)
	if err != nil {
		return nil, errors.New("the stored TPM key's public part is corrupt")
	}
	inPriv, err := tpm2.Unmarshal[tpm2.TPM2BPrivate](priv)
	if err != nil || len(inPriv.Buffer) == 0 {
		return nil, errors.New("the stored TPM key's private part is corrupt")
	}
	public, err := checkPublic(inPub)
	if err != nil {
		return nil, err
	}
	return &Key{dev: d, pub: pub, priv: priv, public: public, inPub: *inPub, inPriv: *inPriv}, nil
}

// checkPublic returns the ECDSA key of a TPM public area that is a
// non-exportable P-256 signing key.
func checkPublic(p *tpm2.TPM2BPublic) (*ecdsa.PublicKey, error) {
	bad := errors.New("the stored TPM key is not a non-exportable P-256 signing key")
	area, err := p.Contents()
	if err != nil || area.Type != tpm2.TPMAlgECC {
		return nil, bad
	}
	a := area.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.SignEncrypt || a.Decrypt || a.Restricted {
		return nil, bad
	}
	parms, err := area.Parameters.ECCDetail()
	if err != nil || parms.CurveID != tpm2.TPMECCNistP256 {
		return nil, bad
	}
	point, err := area.Unique.ECC()
	if err != nil {
		return nil, bad
	}
	pub, err := tpm2.ECDSAPub(parms, point)
	if err != nil || !pub.Curve.IsOnCurve(pub.X, pub.Y) {
		return nil, bad
	}
	return pub, nil
}

// Blobs are what to store: the public part and the wrapped private part.
func (k *Key) Blobs() (pub, priv []byte) { return k.pub, k.priv }

// Device is the TPM the key was made in or loaded for.
func (k *Key) Device() Device { return k.dev }

func (k *Key) Public() crypto.PublicKey { return k.public }

// withLoaded loads the key into the TPM under its storage root key, runs
// f with it, and flushes both.
func (k *Key) withLoaded(f func(t transport.TPM, key tpm2.NamedHandle) error) error {
	t, err := k.dev.open()
	if err != nil {
		return &UnavailableError{Device: k.dev, Err: err}
	}
	defer t.Close()
	parent, flush, err := srk(t)
	if err != nil {
		return &UnavailableError{Device: k.dev, Err: err}
	}
	defer flush()
	loaded, err := tpm2.Load{ParentHandle: parent, InPublic: k.inPub, InPrivate: k.inPriv}.Execute(t)
	if refusesBlobs(err) {
		return fmt.Errorf("%w (%v)", ErrOtherTPM, err)
	}
	if err != nil {
		return &UnavailableError{Device: k.dev, Err: fmt.Errorf("loading the key: %w", err)}
	}
	defer tpm2.FlushContext{FlushHandle: loaded.ObjectHandle}.Execute(t)
	return f(t, tpm2.NamedHandle{Handle: loaded.ObjectHandle, Name: loaded.Name})
}

// refusesBlobs says whether err is the TPM's refusal of the stored blobs
// themselves, an answer that will not change however often it is asked: a
// format-1 response code (the TPM names the parent handle, a parameter or
// the parent's authorization as wrong: TPM_RC_INTEGRITY when another TPM's
// storage root key wrapped the private part, TPM_RC_BAD_AUTH, TPM_RC_VALUE,
// TPM_RC_SIZE, TPM_RC_HIERARCHY...), or TPM_RC_SENSITIVE (the private part
// does not decrypt). Anything else (the connection dropped, the TPM is busy,
// in lockout or in failure mode) may pass: the key is then unavailable.
func refusesBlobs(err error) bool {
	var fmt1 tpm2.TPMFmt1Error
	return errors.As(err, &fmt1) || errors.Is(err, tpm2.TPMRCSensitive)
}

// Check says whether this TPM holds the key: ErrOtherTPM when it does not
// load it, an *UnavailableError when the TPM can't be used right now.
func (k *Key) Check() error {
	return k.withLoaded(func(transport.TPM, tpm2.NamedHandle) error { return nil })
}

// Sign signs a SHA-256 digest in the TPM and returns an ASN.1 DER ECDSA
// signature, as crypto.Signer promises.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 || len(digest) != 32 {
		return nil, errors.New("a TPM DPoP key signs SHA-256 digests only")
	}
	var sig *tpm2.TPMSSignatureECC
	err := k.withLoaded(func(t transport.TPM, key tpm2.NamedHandle) error {
		rsp, err := tpm2.Sign{
			KeyHandle: key,
			Digest:    tpm2.TPM2BDigest{Buffer: digest},
			InScheme: tpm2.TPMTSigScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
			},
			Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck},
		}.Execute(t)
		if err != nil {
			return fmt.Errorf("signing in the TPM: %w", err)
		}
		if sig, err = rsp.Signature.Signature.ECDSA(); err != nil {
			return fmt.Errorf("the TPM's signature is not ECDSA: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(sig.SignatureR.Buffer),
		new(big.Int).SetBytes(sig.SignatureS.Buffer),
	})
}

// UnavailableError is a TPM that can't be opened or used right now (no
// device, no permission, a simulator that is down).
type UnavailableError struct {
	Device Device
	Err    error
}

func (e *UnavailableError) Error() string {
	if e.Device.String() == "" {
		return fmt.Sprintf("the TPM can not be used: %v", e.Err)
	}
	return fmt.Sprintf("the TPM %s can not be used: %v", e.Device, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// ErrOtherTPM is a stored key this TPM does not load: it was made by
// another TPM (a copy from another machine), or this TPM was cleared
// since. No retry helps; a new login makes a new key.
var ErrOtherTPM = errors.New("the TPM does not load this DPoP key: it was made by another TPM, or this TPM was cleared since")
