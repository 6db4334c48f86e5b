package proxy

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

// memStore keeps records in memory.
type memStore struct {
	mu  sync.Mutex
	rec map[string]store.Record
}

func (s *memStore) Get(_ context.Context, p string) (store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rec[p]
	if !ok {
		return store.Record{}, store.ErrNotFound
	}
	return r, nil
}
func (s *memStore) Put(_ context.Context, p string, r store.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec[p] = r
	return nil
}
func (s *memStore) Delete(context.Context, string) error { return nil }
func (s *memStore) Describe() string                     { return "memory" }
func (s *memStore) CheckWritable(context.Context) error  { return nil }

// benchIdP issues DPoP-bound tokens to profiles with dpop: on and Bearer
// tokens to the others, as Keycloak does.
type benchIdP struct{ bound bool }

func (b benchIdP) Refresh(context.Context, string, []string) (*oidc.Token, error) {
	typ := "Bearer"
	if b.bound {
		typ = "DPoP"
	}
	return &oidc.Token{AccessToken: "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.c2lnbmF0dXJl", RefreshToken: "rt", TokenType: typ, ExpiresIn: time.Hour}, nil
}

// dpopBenchProxy is a proxy with the real token manager and two routes to
// one plain-http loopback upstream that answers after delay: "on" (a login
// bound to a key in a file key store, DPoP tokens) and "off" (an unbound
// login, Bearer tokens).
func dpopBenchProxy(tb testing.TB, delay time.Duration) (string, func()) {
	key, _ := dpop.NewKey()
	return dpopBenchProxyKey(tb, delay, key)
}

// oneKey is a key store holding one key (a software or a TPM one).
type oneKey struct{ key crypto.Signer }

func (k oneKey) Generate() (crypto.Signer, error)                   { return nil, errors.New("not here") }
func (k oneKey) Put(context.Context, string, crypto.Signer) error   { return nil }
func (k oneKey) Get(context.Context, string) (crypto.Signer, error) { return k.key, nil }
func (k oneKey) Delete(context.Context, string) error               { return nil }
func (k oneKey) Describe() string                                   { return "one key" }

// dpopBenchProxyKey is dpopBenchProxy with the bound login's key.
func dpopBenchProxyKey(tb testing.TB, delay time.Duration, key crypto.Signer) (string, func()) {
	const issuer = "https://sso.example.com/realms/r"
	oldKeys := tokens.KeysFor
	tokens.KeysFor = func(config.Profile) (store.KeyStore, error) { return oneKey{key}, nil }
	jkt, _ := dpop.Thumbprint(key)
	st := &memStore{rec: map[string]store.Record{
		"bound": {RefreshToken: "rt", Issuer: issuer, ClientID: "kc-agent", KeyThumbprint: jkt, SavedAt: time.Now()},
		"plain": {RefreshToken: "rt", Issuer: issuer, ClientID: "kc-agent", SavedAt: time.Now()},
	}}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		io.WriteString(w, `{"ok":true}`)
	}))
	cfg, err := config.ParseWhere("c.yaml", []byte(fmt.Sprintf(`profiles:
  bound:
    issuer: %[1]s
    dpop: on
  plain:
    issuer: %[1]s
routes:
  - name: on
    upstream: %[2]s
    profile: bound
  - name: off
    upstream: %[2]s
    profile: plain
proxy:
  listen: 127.0.0.1:0
`, issuer, up.URL)), peer.Visible)
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := tokens.NewManager(log)
	m.StoreFor = func(config.Profile) (store.Store, error) { return st, nil }
	m.NewClient = func(_ context.Context, p config.Profile) (tokens.Refresher, error) {
		return benchIdP{bound: p.DPoPEnabled()}, nil
	}
	m.SetConfig(cfg)
	p, err := New(Options{Config: cfg, Tokens: m, StateDir: testenv.TempDir(tb), Log: log})
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Start(); err != nil {
		tb.Fatal(err)
	}
	return "http://" + p.Addr(), func() { p.Close(); m.Close(); up.Close(); tokens.KeysFor = oldKeys }
}

func benchGet(c *http.Client, u string) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// rps sends n GETs to u from conc clients with keep-alive and answers the
// requests per second.
func rps(c *http.Client, u string, n, conc int) (float64, error) {
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / conc {
				if err := benchGet(c, u); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return float64(n/conc*conc) / time.Since(start).Seconds(), <-errs
}

// BenchmarkDPoPRoute is one request through a route, with dpop: on (a
// proof signed per request) and off (Bearer), through the real token
// manager, on loopback with keep-alive.
func BenchmarkDPoPRoute(b *testing.B) {
	base, stop := dpopBenchProxy(b, 0)
	defer stop()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			if err := benchGet(c, base+"/"+mode+"/x"); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := benchGet(c, base+"/"+mode+"/x"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkDPoPRouteRatio measures requests/s through the "on" and "off"
// routes in alternating rounds of one run (a shared machine's noise hits
// both alike) and reports the median of each and on/off (goal: >= 0.9):
// 8 clients and an upstream that answers at once (the proxy's CPU is all
// there is: the cost of a P-256 signature shows in full); 8 clients and
// an upstream that takes 5 ms, as an API across a network does; and one
// client (a notebook's sequential calls) to that upstream.
func BenchmarkDPoPRouteRatio(b *testing.B) {
	for _, sc := range []struct {
		delay   time.Duration
		n, conc int
	}{{0, 2000, 8}, {5 * time.Millisecond, 2000, 8}, {5 * time.Millisecond, 400, 1}} {
		b.Run(fmt.Sprintf("upstream=%s/clients=%d", sc.delay, sc.conc), func(b *testing.B) {
			base, stop := dpopBenchProxy(b, sc.delay)
			defer stop()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			rounds, n, conc, delay := 5, sc.n, sc.conc, sc.delay
			var on, off []float64
			for i := 0; i < b.N; i++ {
				on, off = on[:0], off[:0]
				for range rounds {
					for _, mode := range []string{"off", "on"} {
						r, err := rps(c, base+"/"+mode+"/x", n, conc)
						if err != nil {
							b.Fatal(err)
						}
						if mode == "on" {
							on = append(on, r)
						} else {
							off = append(off, r)
						}
					}
				}
			}
			mOn, mOff := median(on), median(off)
			b.ReportMetric(mOff, "off-req/s")
			b.ReportMetric(mOn, "on-req/s")
			b.ReportMetric(mOn/mOff, "on/off")
			b.Logf("upstream %s: dpop off %.0f req/s, on %.0f req/s, on/off %.3f (medians of %d alternating rounds of %d requests, %d clients)",
				delay, mOff, mOn, mOn/mOff, rounds, n, conc)
		})
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
