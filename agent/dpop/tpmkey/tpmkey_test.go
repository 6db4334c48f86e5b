//go:build unix

package tpmkey

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/kc-agent/kc-agent/internal/testenv/swtpm"
)

func newKey(t *testing.T) (*Key, Device) {
	t.Helper()
	dev := Device(swtpm.Start(t).Device)
	key, err := dev.Generate()
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return key, dev
}

func signVerify(t *testing.T, key crypto.Signer, pub *ecdsa.PublicKey) {
	t.Helper()
	digest := sha256.Sum256([]byte("proof signing input"))
	sig, err := key.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Fatal("the TPM's signature does not verify with the key's public key")
	}
}

// A key made in the TPM signs (DER, as crypto.Signer promises), and so
// does the same key loaded again from its stored blobs.
func TestSignVerifyRoundTrip(t *testing.T) {
	key, dev := newKey(t)
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("public key %T is not P-256", key.Public())
	}
	signVerify(t, key, pub)
	again, err := dev.Load(key.Blobs())
	if err != nil {
		t.Fatalf("Load of the stored blobs: %v", err)
	}
	if !again.Public().(*ecdsa.PublicKey).Equal(pub) {
		t.Fatal("the reloaded key has another public key")
	}
	signVerify(t, again, pub)
	sha1 := make([]byte, 20)
	if _, err := key.Sign(nil, sha1, crypto.SHA1); err == nil {
		t.Fatal("signed a SHA-1 digest")
	}
}

// What is stored is no private key: it parses as none, and no 32 bytes of
// it are the private scalar of the key's public point.
func TestStoredBlobIsNotAPrivateKey(t *testing.T) {
	key, _ := newKey(t)
	pubBlob, privBlob := key.Blobs()
	pub := key.Public().(*ecdsa.PublicKey)
	for _, b := range [][]byte{pubBlob, privBlob, append(append([]byte{}, pubBlob...), privBlob...)} {
		if _, err := x509.ParsePKCS8PrivateKey(b); err == nil {
			t.Fatal("a stored blob parses as a PKCS #8 private key")
		}
		if _, err := x509.ParseECPrivateKey(b); err == nil {
			t.Fatal("a stored blob parses as an EC private key")
		}
		for i := 0; i+32 <= len(b); i++ {
			x, y := elliptic.P256().ScalarBaseMult(b[i : i+32])
			if x.Cmp(pub.X) == 0 && y.Cmp(pub.Y) == 0 {
				t.Fatalf("bytes %d-%d of a stored blob are the private key", i, i+32)
			}
		}
	}
}

// The TPM itself says the loaded key can't leave it: fixedTPM,
// fixedParent, made inside (sensitiveDataOrigin), a signing key only.
func TestTPMReportsNonExportable(t *testing.T) {
	key, dev := newKey(t)
	tp, err := dev.open()
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	parent, flush, err := srk(tp)
	if err != nil {
		t.Fatal(err)
	}
	defer flush()
	loaded, err := tpm2.Load{ParentHandle: parent, InPublic: key.inPub, InPrivate: key.inPriv}.Execute(tp)
	if err != nil {
		t.Fatal(err)
	}
	defer tpm2.FlushContext{FlushHandle: loaded.ObjectHandle}.Execute(tp)
	rsp, err := tpm2.ReadPublic{ObjectHandle: loaded.ObjectHandle}.Execute(tp)
	if err != nil {
		t.Fatal(err)
	}
	area, err := rsp.OutPublic.Contents()
	if err != nil {
		t.Fatal(err)
	}
	a := area.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.SignEncrypt || a.Decrypt {
		t.Fatalf("the TPM reports attributes %+v", a)
	}
	if got, _ := checkPublic(&rsp.OutPublic); got == nil || !got.Equal(key.Public()) {
		t.Fatal("the TPM's public key is not the key's")
	}
}

// Another TPM (another machine's, here a second swtpm with its own seeds)
// does not load the blobs: ErrOtherTPM, and no signature.
func TestOtherTPMDoesNotSign(t *testing.T) {
	key, _ := newKey(t)
	other := Device(swtpm.Start(t).Device)
	copied, err := other.Load(key.Blobs())
	if err != nil {
		t.Fatalf("Load (no TPM asked yet): %v", err)
	}
	digest := sha256.Sum256([]byte("x"))
	sig, err := copied.Sign(nil, digest[:], crypto.SHA256)
	if !errors.Is(err, ErrOtherTPM) || sig != nil {
		t.Fatalf("another TPM signed with the copied key: %v", err)
	}
}

// Load takes only a non-exportable P-256 signing key: a public area that
// would allow duplication, or decryption, or another curve, is refused.
func TestLoadRefusesExportableKeys(t *testing.T) {
	key, dev := newKey(t)
	_, priv := key.Blobs()
	area, _ := key.inPub.Contents()
	for name, change := range map[string]func(p *tpm2.TPMTPublic){
		"not fixedTPM":    func(p *tpm2.TPMTPublic) { p.ObjectAttributes.FixedTPM = false },
		"not fixedParent": func(p *tpm2.TPMTPublic) { p.ObjectAttributes.FixedParent = false },
		"imported":        func(p *tpm2.TPMTPublic) { p.ObjectAttributes.SensitiveDataOrigin = false },
		"decrypt":         func(p *tpm2.TPMTPublic) { p.ObjectAttributes.Decrypt = true },
	} {
		p := *area
		change(&p)
		if _, err := dev.Load(tpm2.Marshal(tpm2.New2B(p)), priv); err == nil || !strings.Contains(err.Error(), "non-exportable") {
			t.Errorf("%s: Load accepted it: %v", name, err)
		}
	}
	if _, err := dev.Load([]byte{0, 1}, priv); err == nil {
		t.Error("Load accepted a truncated public part")
	}
	if _, err := dev.Load(tpm2.Marshal(key.inPub), nil); err == nil {
		t.Error("Load accepted an empty private part")
	}
}

// With an owner password on the TPM, kc-agent can't make its storage root
// key, and says so (auto then uses a software key).
func TestOwnerPasswordSet(t *testing.T) {
	dev := Device(swtpm.Start(t).Device)
	tp, err := dev.open()
	if err != nil {
		t.Fatal(err)
	}
	_, err = tpm2.HierarchyChangeAuth{AuthHandle: tpm2.TPMRHOwner, NewAuth: tpm2.TPM2BAuth{Buffer: []byte("owner-pw")}}.Execute(tp)
	tp.Close()
	if err != nil {
		t.Fatal(err)
	}
	var unavailable *UnavailableError
	if _, err := dev.Generate(); !errors.As(err, &unavailable) || !strings.Contains(err.Error(), "is an owner password set?") {
		t.Fatalf("Generate under an owner password: %v", err)
	}
}

// A simulator another local user runs on loopback is refused: it would
// hold the keys it made.
func TestSimulatorOfAnotherUserRefused(t *testing.T) {
	theirs := Device(swtpm.StartAsNobody(t).Device)
	if _, err := theirs.Generate(); err == nil || !strings.Contains(err.Error(), "not by you") {
		t.Fatalf("another user's simulator: %v", err)
	}
}

// A simulator is reached on loopback only: TPM commands don't go over the
// network.
func TestSimulatorLoopbackOnly(t *testing.T) {
	for _, d := range []Device{"mssim:10.1.2.3:2321", "mssim:example.com:2321", "mssim:nohost"} {
		if _, err := d.Generate(); err == nil || !strings.Contains(err.Error(), "TPM simulator address") {
			t.Errorf("%s: %v", d, err)
		}
	}
	if _, err := Device("/nonexistent/tpmrm0").Generate(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Generate with a missing device: %v", err)
	}
}

// One proof's signature: open the TPM, make the SRK, load the key, sign,
// flush (swtpm; a hardware TPM is slower, see the README).
func BenchmarkSign(b *testing.B) {
	dev := Device(swtpm.Start(b).Device)
	key, err := dev.Generate()
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	for b.Loop() {
		if _, err := key.Sign(nil, digest[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	}
}
