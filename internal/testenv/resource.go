//go:build unix

package testenv

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// TestCA signs the resource servers' certificates.
type TestCA struct {
	Cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	PEMPath string
}

// NewTestCA makes a CA and writes its certificate to a temp file.
func NewTestCA(t testing.TB) *TestCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kc-agent test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := filepath.Join(t.TempDir(), "test-ca.pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return &TestCA{Cert: cert, key: key, PEMPath: p}
}

// TLSConfig is a server config with a leaf for localhost and 127.0.0.1.
func (ca *TestCA) TLSConfig(t testing.TB) *tls.Config {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"http/1.1"}}
}

// SeenRequest is what the resource server recorded of one request.
type SeenRequest struct {
	Path          string
	Authorization bool
	Host          string
	// At is when the request arrived; Expiry is the exp claim of its
	// bearer token (zero without one), read unverified.
	At     time.Time
	Expiry time.Time
}

// bearerExpiry reads the exp claim of a bearer token without verifying it:
// tests use it to see how much life a token had left when it arrived.
func bearerExpiry(h string) time.Time {
	tok, ok := strings.CutPrefix(h, "Bearer ")
	parts := strings.Split(tok, ".")
	if !ok || len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(claims.Exp, 0)
}

// ResourceServer is an API that accepts only Keycloak-signed tokens for its
// audience, served over TLS. It records every request.
type ResourceServer struct {
	URL      string // https://localhost:PORT
	Addr     string
	verifier *gooidc.IDTokenVerifier

	mu   sync.Mutex
	seen []SeenRequest
	// SSEAck is signalled by the test once it read the first SSE event.
	SSEAck chan struct{}
}

// Seen returns the recorded requests.
func (rs *ResourceServer) Seen() []SeenRequest {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]SeenRequest(nil), rs.seen...)
}

// WhoAmI is the answer of /whoami.
type WhoAmI struct {
	User  string   `json:"user"`
	Roles []string `json:"roles"`
	Path  string   `json:"path"`
}

// StartResourceServer starts it; issuer is the realm whose tokens count,
// audience the aud they must carry. With a nil ca the server uses its own
// self-signed certificate, which nobody trusts.
func StartResourceServer(t testing.TB, ca *TestCA, issuer, audience string) *ResourceServer {
	t.Helper()
	rs := &ResourceServer{SSEAck: make(chan struct{}, 1)}
	if issuer != "" {
		p, err := gooidc.NewProvider(context.Background(), issuer)
		if err != nil {
			t.Fatalf("resource server discovery: %v", err)
		}
		rs.verifier = p.Verifier(&gooidc.Config{ClientID: audience})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var cfg *tls.Config
	if ca != nil {
		cfg = ca.TLSConfig(t)
	} else {
		cfg = NewTestCA(t).TLSConfig(t) // a CA nobody was told about
	}
	srv := &http.Server{Handler: rs.handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	rs.Addr = ln.Addr().String()
	rs.URL = "https://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	return rs
}

func (rs *ResourceServer) handler() http.Handler {
	mux := http.NewServeMux()
	auth := func(w http.ResponseWriter, r *http.Request) (*WhoAmI, bool) {
		h := r.Header.Get("Authorization")
		if !strings.HasPrefix(h, "Bearer ") || rs.verifier == nil {
			http.Error(w, "missing bearer token", http.StatusUnauthorized)
			return nil, false
		}
		tok, err := rs.verifier.Verify(r.Context(), strings.TrimPrefix(h, "Bearer "))
		if err != nil {
			http.Error(w, "invalid token: "+err.Error(), http.StatusUnauthorized)
			return nil, false
		}
		var claims struct {
			User  string `json:"preferred_username"`
			Realm struct {
				Roles []string `json:"roles"`
			} `json:"realm_access"`
		}
		tok.Claims(&claims)
		return &WhoAmI{User: claims.User, Roles: claims.Realm.Roles, Path: r.RequestURI}, true
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		who, ok := auth(w, r)
		if !ok {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(who)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := auth(w, r); !ok {
			return
		}
		n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		io.CopyN(w, zeros{}, n)
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := auth(w, r); !ok {
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		fmt.Fprintf(w, "%d", n)
	})
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := auth(w, r); !ok {
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-rs.SSEAck:
			fmt.Fprint(w, "data: two\n\n")
		case <-time.After(10 * time.Second):
			fmt.Fprint(w, "data: timeout\n\n")
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := auth(w, r); !ok {
			return
		}
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		// An echo of lines: enough to show the upgraded stream is proxied
		// both ways without framing.
		sc := bufio.NewScanner(brw)
		for sc.Scan() {
			fmt.Fprintf(conn, "echo: %s\n", sc.Text())
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.mu.Lock()
		rs.seen = append(rs.seen, SeenRequest{Path: r.URL.Path, Authorization: r.Header.Get("Authorization") != "", Host: r.Host,
			At: time.Now(), Expiry: bearerExpiry(r.Header.Get("Authorization"))})
		rs.mu.Unlock()
		// Routes may carry a base path (/v1); the handlers do not care.
		if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/"); ok {
			r.URL.Path = "/" + rest
			r.URL.RawPath = ""
		}
		mux.ServeHTTP(w, r)
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// PlainServer is a plain-http server that records requests.
func PlainServer(t testing.TB) (string, func() []SeenRequest) {
	var mu sync.Mutex
	var seen []SeenRequest
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, SeenRequest{Path: r.URL.Path, Authorization: r.Header.Get("Authorization") != "", Host: r.Host})
		mu.Unlock()
		fmt.Fprint(w, "plain ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), func() []SeenRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]SeenRequest(nil), seen...)
	}
}
