// Package dpop binds a login to a key only the agent holds (RFC 9449,
// OAuth 2.0 Demonstrating Proof of Possession). Every request to the
// provider's token endpoints carries a proof, a JWT signed by the key and
// naming the request's method and URL; Keycloak then binds the offline
// token it issues to the key's thumbprint (cnf.jkt), and refuses a refresh
// without a proof by the same key. A copy of the offline token alone can no
// longer be refreshed anywhere.
//
// The key is a crypto.Signer, so a non-exportable key (a TPM, a platform
// key store) can take the place of the in-memory ECDSA key.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"
)

// NewKey makes a P-256 key for one login (ES256, the algorithm every
// DPoP server supports).
func NewKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// MarshalKey encodes a software key for storing (PKCS #8, base64url).
func MarshalKey(k *ecdsa.PrivateKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(der), nil
}

// ParseKey decodes what MarshalKey made.
func ParseKey(s string) (*ecdsa.PrivateKey, error) {
	der, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("the stored DPoP key is not base64url")
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("the stored DPoP key is not a PKCS #8 key")
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("the stored DPoP key is not a P-256 key")
	}
	return ec, nil
}

// JWK is the public key as a JSON Web Key, members in the order RFC 7638
// hashes them.
type JWK struct {
	Crv string `json:"crv"`
	Kty string `json:"kty"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// PublicJWK is signer's public key as a JWK. Only P-256 keys are supported.
func PublicJWK(signer crypto.Signer) (JWK, error) {
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return JWK{}, errors.New("dpop: only P-256 keys are supported")
	}
	raw, err := pub.Bytes() // 0x04 || X || Y, fixed width
	if err != nil {
		return JWK{}, err
	}
	enc := base64.RawURLEncoding.EncodeToString
	return JWK{Crv: "P-256", Kty: "EC", X: enc(raw[1:33]), Y: enc(raw[33:])}, nil
}

// Thumbprint is the JWK SHA-256 thumbprint (RFC 7638) of signer's public
// key: what the provider puts in a bound token's cnf.jkt.
func Thumbprint(signer crypto.Signer) (string, error) {
	jwk, err := PublicJWK(signer)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(jwk) // struct order: crv, kty, x, y; no spaces
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// Proof is one DPoP proof for a request: method and target (query and
// fragment are dropped, RFC 9449 4.2), the server's nonce when it asked for
// one, and the access token's hash (ath) when the proof goes with a token
// to a resource server.
type Proof struct {
	Method, URL string
	Nonce       string
	AccessToken string
	Now         time.Time
}

type header struct {
	Typ string `json:"typ"`
	Alg string `json:"alg"`
	JWK JWK    `json:"jwk"`
}

type claims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	Nonce string `json:"nonce,omitempty"`
	ATH   string `json:"ath,omitempty"`
}

// Sign makes the proof's JWT with signer.
func (p Proof) Sign(signer crypto.Signer) (string, error) {
	jwk, err := PublicJWK(signer)
	if err != nil {
		return "", err
	}
	htu, err := targetURI(p.URL)
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	c := claims{JTI: base64.RawURLEncoding.EncodeToString(jti), HTM: strings.ToUpper(p.Method), HTU: htu, IAT: p.Now.Unix(), Nonce: p.Nonce}
	if p.AccessToken != "" {
		sum := sha256.Sum256([]byte(p.AccessToken))
		c.ATH = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	hb, _ := json.Marshal(header{Typ: "dpop+jwt", Alg: "ES256", JWK: jwk})
	cb, _ := json.Marshal(c)
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	digest := sha256.Sum256([]byte(input))
	der, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: signing the proof: %w", err)
	}
	sig, err := rawSignature(der)
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// targetURI is the htu claim: scheme, host and path, without query and
// fragment.
func targetURI(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("dpop: %q is not an absolute URL", raw)
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.User = "", "", "", nil
	return u.String(), nil
}

// rawSignature turns an ASN.1 ECDSA signature (what crypto.Signer returns)
// into JWS's fixed-width R || S.
func rawSignature(der []byte) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 {
		return nil, errors.New("dpop: the key returned a malformed signature")
	}
	out := make([]byte, 64)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out, nil
}
