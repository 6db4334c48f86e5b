// Package dpopapi is a resource server for tests that checks DPoP-bound
// access tokens as RFC 9449 section 7 asks: a proof per request (typ,
// ES256, the public jwk, signature, htm, htu, an iat window, jti replay,
// ath), one use_dpop_nonce challenge per client key, and the token at
// Keycloak (introspection), whose cnf.jkt must be the proof key's
// thumbprint. In Bearer mode it is a plain Bearer API that refuses a bound
// token, as Keycloak's own userinfo does. It counts what it saw.
package dpopapi

import (
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Mode is the scheme the API accepts.
type Mode int

const (
	// ModeDPoP accepts only Authorization: DPoP with a proof.
	ModeDPoP Mode = iota
	// ModeBearer accepts only Authorization: Bearer with an unbound token.
	ModeBearer
)

// Options configure a Server.
type Options struct {
	Mode Mode
	// Issuer is the realm's; ClientID and ClientSecret a confidential
	// client of it that may introspect tokens.
	Issuer, ClientID, ClientSecret string
	// Window is how far a proof's iat may be from now; 0 is 60 s.
	Window time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Stats is what the API saw.
type Stats struct {
	Accepted   int
	Challenges int            // use_dpop_nonce answers
	Refused    map[string]int // by reason
	// Introspections counts calls to Keycloak (answers are cached).
	Introspections int
}

// Server is the API; it answers every path.
type Server struct {
	opts Options
	in   *introspector

	mu      sync.Mutex
	nonces  map[string]string    // by proof key thumbprint: the one nonce issued to it
	seen    map[string]time.Time // jti -> when it stops mattering
	stats   Stats
	lastGot Request
}

// Request is what the API last accepted, for tests to look at.
type Request struct {
	Method, Path, Query, User, Scheme string
	Body                              []byte
}

// New returns the API.
func New(opts Options) *Server {
	if opts.Window == 0 {
		opts.Window = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{opts: opts, in: newIntrospector(opts.Issuer, opts.ClientID, opts.ClientSecret),
		nonces: map[string]string{}, seen: map[string]time.Time{}, stats: Stats{Refused: map[string]int{}}}
}

// Stats is a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Refused = make(map[string]int, len(s.stats.Refused))
	for k, v := range s.stats.Refused {
		st.Refused[k] = v
	}
	s.in.mu.Lock()
	st.Introspections = s.in.calls
	s.in.mu.Unlock()
	return st
}

// Last is the last request the API accepted.
func (s *Server) Last() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastGot
}

func (s *Server) refused(reason string) {
	s.mu.Lock()
	s.stats.Refused[reason]++
	s.mu.Unlock()
}

// nonceFor is the nonce issued to a key, made on first use (the one
// challenge), and whether it was new.
func (s *Server) nonceFor(jkt string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Challenges++
	if n, ok := s.nonces[jkt]; ok {
		return n, false
	}
	b := make([]byte, 18)
	rand.Read(b)
	n := base64.RawURLEncoding.EncodeToString(b)
	s.nonces[jkt] = n
	return n, true
}

// expectedNonce is the nonce a key must send ("" before its challenge).
func (s *Server) expectedNonce(jkt string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nonces[jkt]
}

// replayed records jti and says whether it was seen before.
func (s *Server) replayed(jti string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[jti]; ok {
		return true
	}
	if len(s.seen) > 10000 {
		for k, until := range s.seen {
			if now.After(until) {
				delete(s.seen, k)
			}
		}
	}
	s.seen[jti] = now.Add(2 * s.opts.Window) // older proofs fail the iat check anyway
	return false
}

// Start serves a new API on a loopback port until the test ends, and
// returns it with its base URL (http://127.0.0.1:PORT).
func Start(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s := New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s, "http://" + ln.Addr().String()
}
