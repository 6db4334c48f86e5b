package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kc-agent/kc-agent/internal/atomicfile"
)

// CA is the per-user local certificate authority used for interception.
// It is generated on first use (ECDSA P-256); its key is a 0600 file in the
// state directory and never leaves this machine.
type CA struct {
	Dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// CADir is the directory of the local CA in stateDir.
func CADir(stateDir string) string { return filepath.Join(stateDir, "ca") }

// CertPath is the CA certificate (PEM).
func (c *CA) CertPath() string { return filepath.Join(c.Dir, "ca.pem") }

// BundlePath is system roots + the CA, for REQUESTS_CA_BUNDLE and friends.
func (c *CA) BundlePath() string { return filepath.Join(c.Dir, "bundle.pem") }

// CABundlePath is BundlePath for the CA in stateDir.
func CABundlePath(stateDir string) string { return filepath.Join(CADir(stateDir), "bundle.pem") }

func (c *CA) keyPath() string { return filepath.Join(c.Dir, "ca-key.pem") }

// LoadOrCreateCA loads the CA from dir, creating it the first time.
func LoadOrCreateCA(dir string) (*CA, error) {
	ca := &CA{Dir: dir, leaves: map[string]*tls.Certificate{}}
	certPEM, err1 := os.ReadFile(ca.CertPath())
	keyPEM, err2 := os.ReadFile(ca.keyPath())
	if err1 == nil && err2 == nil {
		if err := ca.parse(certPEM, keyPEM); err != nil {
			return nil, fmt.Errorf("local CA in %s is unreadable (%v); delete the directory to make a new one", dir, err)
		}
		if time.Now().Before(ca.cert.NotAfter.Add(-30 * 24 * time.Hour)) {
			return ca, ca.writeBundle()
		}
	} else if !errors.Is(err1, os.ErrNotExist) && err1 != nil {
		return nil, err1
	}
	if err := ca.create(); err != nil {
		return nil, err
	}
	return ca, ca.writeBundle()
}

func (c *CA) parse(certPEM, keyPEM []byte) error {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return err
	}
	c.cert, c.key = cert, key
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func (c *CA) create() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "kc-agent local CA (" + host + ")", Organization: []string{"kc-agent"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(2, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.Write(c.keyPath(), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := atomicfile.Write(c.CertPath(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	c.cert, c.key = cert, key
	return nil
}

// systemBundles are where Linux distributions and macOS keep the roots.
var systemBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// writeBundle writes the system roots plus the local CA, so clients that
// take one bundle file (Python requests, curl, Node) trust both.
func (c *CA) writeBundle() error {
	var bundle []byte
	for _, p := range systemBundles {
		if data, err := os.ReadFile(p); err == nil {
			bundle = append(bundle, data...)
			if len(bundle) > 0 && bundle[len(bundle)-1] != '\n' {
				bundle = append(bundle, '\n')
			}
			break
		}
	}
	bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})...)
	return atomicfile.Write(c.BundlePath(), bundle, 0o644)
}

// Leaf returns a certificate for host, signed by the CA, cached.
func (c *CA) Leaf(host string) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.leaves[host]; ok && time.Now().Before(l.Leaf.NotAfter.Add(-time.Hour)) {
		return l, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, err
	}
	leaf, _ := x509.ParseCertificate(der)
	l := &tls.Certificate{Certificate: [][]byte{der, c.cert.Raw}, PrivateKey: key, Leaf: leaf}
	c.leaves[host] = l
	return l, nil
}
