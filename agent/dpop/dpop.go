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
	htu, err := TargetURI(p.URL)
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

// TargetURI is the htu claim of a proof for a request to raw (RFC 9449
// 4.2): the URL without query, fragment and userinfo, normalised as RFC
// 3986 6.2.2-6.2.3 says where it can not change what the server sees:
// scheme and host in lower case, the scheme's default port and an empty
// port dropped, an empty path as "/", dot segments removed (every client
// that sends such a path removes them first: curl, browsers, urllib3;
// the proxy refuses them). Percent-encoding stays as the request carries
// it: a server that normalises does so on both sides, and one that
// compares raw paths (Keycloak: java.net.URI.equals) would refuse a proof
// whose %7E became "~". A host that is not ASCII is refused: which IDNA
// form the client sends is not ours to guess.
func TargetURI(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Hostname() == "" || u.Opaque != "" {
		return "", errors.New("dpop: the request's URL is not an absolute URL with a host")
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return "", errors.New("dpop: the request's host is not ASCII; give its IDNA (xn--) form")
		}
	}
	if port == defaultPorts[scheme] {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + strings.ReplaceAll(host, "%", "%25") + "]" // IPv6, its zone escaped
	}
	if port != "" {
		host += ":" + port
	}
	path := removeDotSegments(u.EscapedPath())
	if path == "" {
		path = "/"
	}
	out := scheme + "://" + host + path
	if v, err := url.Parse(out); err != nil || v.Hostname() == "" {
		return "", errors.New("dpop: the request's URL has no valid host")
	}
	return out, nil
}

var defaultPorts = map[string]string{"http": "80", "https": "443"}

// removeDotSegments resolves "." and ".." segments of an absolute path
// (RFC 3986 5.2.4).
func removeDotSegments(p string) string {
	if !strings.Contains(p, "/.") {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		switch s {
		case ".":
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			continue
		}
		if i == len(segs)-1 {
			out = append(out, "") // "/a/.." is "/a/"
		}
	}
	return strings.Join(out, "/")
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
