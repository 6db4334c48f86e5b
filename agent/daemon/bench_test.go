package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
)

type oneStore struct{}

func (oneStore) Get(context.Context, string) (store.Record, error) {
	return store.Record{RefreshToken: "rt", Issuer: "https://sso.example.com/realms/r", ClientID: "kc-agent", SavedAt: time.Now()}, nil
}
func (oneStore) Put(context.Context, string, store.Record) error { return nil }
func (oneStore) Delete(context.Context, string) error            { return nil }
func (oneStore) Describe() string                                { return "one" }
func (oneStore) CheckWritable(context.Context) error             { return nil }

type staticIdP struct{}

func (staticIdP) Refresh(context.Context, string, []string) (*oidc.Token, error) {
	return &oidc.Token{AccessToken: "access-token-for-benchmarks", RefreshToken: "rt", TokenType: "Bearer", ExpiresIn: time.Hour}, nil
}

// BenchmarkTokenRoundTrip is one `token` request to a warm agent over the
// real Unix socket: connection, HTTP, JSON, peer check, cache hit.
func BenchmarkTokenRoundTrip(b *testing.B) {
	dir, _ := os.MkdirTemp("", "kcb")
	defer os.RemoveAll(dir)
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\n"), 0o600)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := tokens.NewManager(log)
	m.StoreFor = func(config.Profile) (store.Store, error) { return oneStore{}, nil }
	m.NewClient = func(context.Context, config.Profile) (tokens.Refresher, error) { return staticIdP{}, nil }
	sock := filepath.Join(dir, "s", "agent.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Version: "bench", ConfigPath: cfgPath, SocketPath: sock, Log: log, Ready: ready, Manager: m})
	}()
	<-ready
	defer func() { cancel(); <-done }()

	for _, fresh := range []bool{false, true} {
		name := "keepalive"
		if fresh {
			name = "new-connection" // what a `kc-agent token` process does
		}
		b.Run(name, func(b *testing.B) {
			c := ipc.NewClientAt(sock)
			if _, err := c.Token(ctx, ipc.TokenRequest{Profile: "default"}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if fresh {
					c = ipc.NewClientAt(sock)
				}
				if _, err := c.Token(ctx, ipc.TokenRequest{Profile: "default"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
