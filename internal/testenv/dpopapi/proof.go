package dpopapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MaxProof bounds the DPoP header a request may carry.
const MaxProof = 8 << 10

// Proof is a DPoP proof whose signature was checked against the public
// key in its own header (RFC 9449 4.3, steps 1-7); what it claims about
// the request is checked by the server.
type Proof struct {
	JWK        jwk
	Thumbprint string // RFC 7638, of JWK
	JTI        string
	HTM, HTU   string
	IAT        int64
	Nonce, ATH string
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d,omitempty"`
}

// ParseProof reads a DPoP proof JWT: typ dpop+jwt, alg ES256, a public
// P-256 key in the header, a valid signature by that key, and the claims a
// proof must have. The error says which check failed (a refusal reason).
func ParseProof(s string) (*Proof, error) {
	if len(s) > MaxProof {
		return nil, errors.New("malformed: the proof is too long")
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, errors.New("malformed: not a compact JWS")
	}
	var h struct {
		Typ string          `json:"typ"`
		Alg string          `json:"alg"`
		JWK json.RawMessage `json:"jwk"`
	}
	if err := decodePart(parts[0], &h); err != nil {
		return nil, fmt.Errorf("malformed: header: %w", err)
	}
	if h.Typ != "dpop+jwt" {
		return nil, fmt.Errorf("typ: %q is not dpop+jwt", h.Typ)
	}
	if h.Alg != "ES256" {
		return nil, fmt.Errorf("alg: %q is not ES256", h.Alg)
	}
	var k jwk
	if len(h.JWK) == 0 || json.Unmarshal(h.JWK, &k) != nil {
		return nil, errors.New("jwk: the header has no jwk")
	}
	pub, err := publicKey(k)
	if err != nil {
		return nil, err
	}
	if err := verifyES256(pub, parts[0]+"."+parts[1], parts[2]); err != nil {
		return nil, err
	}
	var c struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   *int64 `json:"iat"`
		Nonce string `json:"nonce"`
		ATH   string `json:"ath"`
	}
	if err := decodePart(parts[1], &c); err != nil {
		return nil, fmt.Errorf("malformed: claims: %w", err)
	}
	if c.JTI == "" || c.HTM == "" || c.HTU == "" || c.IAT == nil {
		return nil, errors.New("malformed: jti, htm, htu and iat are required")
	}
	return &Proof{JWK: k, Thumbprint: Thumbprint(k), JTI: c.JTI, HTM: c.HTM, HTU: c.HTU, IAT: *c.IAT, Nonce: c.Nonce, ATH: c.ATH}, nil
}

func decodePart(part string, v any) error {
	data, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return errors.New("not base64url")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return errors.New("not a JSON object")
	}
	return nil
}

// publicKey is k as a P-256 public key; a private member is refused.
func publicKey(k jwk) (*ecdsa.PublicKey, error) {
	if k.Kty != "EC" || k.Crv != "P-256" {
		return nil, fmt.Errorf("jwk: kty %q crv %q is not an EC P-256 key", k.Kty, k.Crv)
	}
	if k.D != "" {
		return nil, errors.New("jwk: the header carries a private key")
	}
	x, err1 := base64.RawURLEncoding.DecodeString(k.X)
	y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
	if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
		return nil, errors.New("jwk: x and y are not 32-byte base64url")
	}
	raw := append([]byte{4}, append(x, y...)...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, errors.New("jwk: the point is not on P-256")
	}
	return pub, nil
}

func verifyES256(pub *ecdsa.PublicKey, input, sig64 string) error {
	sig, err := base64.RawURLEncoding.DecodeString(sig64)
	if err != nil || len(sig) != 64 {
		return errors.New("signature: not a 64-byte ES256 signature")
	}
	digest := sha256.Sum256([]byte(input))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return errors.New("signature: does not verify with the header's jwk")
	}
	return nil
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of an EC key: the
// required members in lexicographic order, no whitespace.
func Thumbprint(k jwk) string {
	canon := `{"crv":` + quote(k.Crv) + `,"kty":` + quote(k.Kty) + `,"x":` + quote(k.X) + `,"y":` + quote(k.Y) + `}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// ATH is the access token hash a proof sent with at must carry.
func ATH(at string) string {
	sum := sha256.Sum256([]byte(at))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Reason is the refusal reason of a ParseProof error (the word before the
// colon): malformed, typ, alg, jwk, signature.
func Reason(err error) string {
	r, _, _ := strings.Cut(err.Error(), ":")
	return r
}
