package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
)

// boundStore holds one login bound to jkt.
type boundStore struct{ jkt string }

func (s boundStore) Get(context.Context, string) (store.Record, error) {
	return store.Record{RefreshToken: "rt", Issuer: "https://sso.example.com/realms/r", ClientID: "kc-agent", KeyThumbprint: s.jkt, SavedAt: time.Now()}, nil
}
func (boundStore) Put(context.Context, string, store.Record) error { return nil }
func (boundStore) Delete(context.Context, string) error            { return nil }
func (boundStore) Describe() string                                { return "bound" }
func (boundStore) CheckWritable(context.Context) error             { return nil }

type dpopIdP struct{}

func (dpopIdP) Refresh(context.Context, string, []string) (*oidc.Token, error) {
	return &oidc.Token{AccessToken: "access-token-for-benchmarks", RefreshToken: "rt", TokenType: "DPoP", ExpiresIn: time.Hour}, nil
}

// BenchmarkProofRoundTrip is one POST /v1/proof to a warm agent over the
// real Unix socket, with keep-alive (what KcAgentAuth does per request
// under dpop: on): the token from the cache and a proof signed with the
// cached key. It reports the p50 beside the mean.
func BenchmarkProofRoundTrip(b *testing.B) {
	dir, _ := os.MkdirTemp("", "kcb")
	defer os.RemoveAll(dir)
	keys := &store.FileKeys{Dir: dir}
	old := tokens.KeysFor
	tokens.KeysFor = func(config.Profile) (store.KeyStore, error) { return keys, nil }
	defer func() { tokens.KeysFor = old }()
	key, _ := dpop.NewKey()
	keys.Put(context.Background(), "default", key)
	jkt, _ := dpop.Thumbprint(key)
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\n    dpop: on\n"), 0o600)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := tokens.NewManager(log)
	m.StoreFor = func(config.Profile) (store.Store, error) { return boundStore{jkt: jkt}, nil }
	m.NewClient = func(context.Context, config.Profile) (tokens.Refresher, error) { return dpopIdP{}, nil }
	sock := filepath.Join(dir, "s", "agent.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Version: "bench", ConfigPath: cfgPath, SocketPath: sock, Log: log, Ready: ready, Manager: m})
	}()
	<-ready
	defer func() { cancel(); <-done }()

	c := ipc.NewClientAt(sock)
	req := ipc.ProofRequest{Profile: "default", Method: "POST", URL: "https://api.example/items?page=2"}
	if p, err := c.Proof(ctx, req); err != nil || p.Proof == "" {
		b.Fatalf("no proof: %v", err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := c.Proof(ctx, req); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
}
