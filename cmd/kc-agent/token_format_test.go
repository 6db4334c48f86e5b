//go:build unix

package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/daemon"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
)

// fakeTokenStore holds one login, in memory.
type fakeTokenStore struct{}

func (fakeTokenStore) Get(context.Context, string) (store.Record, error) {
	return store.Record{RefreshToken: "rt", Issuer: "https://sso.example.com/realms/r", ClientID: "kc-agent", SavedAt: time.Now()}, nil
}
func (fakeTokenStore) Put(context.Context, string, store.Record) error { return nil }
func (fakeTokenStore) Delete(context.Context, string) error            { return nil }
func (fakeTokenStore) Describe() string                                { return "fake" }
func (fakeTokenStore) CheckWritable(context.Context) error             { return nil }

// fakeIdP answers every refresh with the same access token.
type fakeIdP struct{ access string }

func (f fakeIdP) Refresh(context.Context, string, []string) (*oidc.Token, error) {
	return &oidc.Token{AccessToken: f.access, RefreshToken: "rt", TokenType: "Bearer", ExpiresIn: time.Hour}, nil
}

// Every `kc-agent token --format` against the real daemon handler and
// socket, with only the identity provider and the store faked: a change to
// the answer or to the printing shows here without Keycloak.
func TestTokenFormatsAgainstTheDaemon(t *testing.T) {
	const access = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJmb3JtYXQifQ.c2ln"
	dir, err := os.MkdirTemp("", "kcf") // short: socket paths have a length limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s", "agent.sock")
	t.Setenv("KC_AGENT_CONFIG", cfgPath)
	t.Setenv("KC_AGENT_SOCK", sock)
	t.Setenv("KC_AGENT_NO_AUTOSTART", "1")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := tokens.NewManager(log)
	m.StoreFor = func(config.Profile) (store.Store, error) { return fakeTokenStore{}, nil }
	m.NewClient = func(context.Context, config.Profile) (tokens.Refresher, error) { return fakeIdP{access}, nil }
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Options{Version: "test", ConfigPath: cfgPath, SocketPath: sock, Log: log, Ready: ready, Manager: m})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("the agent did not start: %v", err)
	}
	defer func() { cancel(); <-done }()

	for _, c := range []struct {
		format string
		want   func(string) bool
	}{
		{"raw", func(s string) bool { return s == access+"\n" }},
		{"header", func(s string) bool { return s == "Authorization: Bearer "+access+"\n" }},
		{"env", func(s string) bool { return s == "export KC_AGENT_ACCESS_TOKEN='"+access+"'\n" }},
		{"json", func(s string) bool {
			return strings.HasPrefix(s, `{"access_token":"`+access+`","expires_at":"`) &&
				strings.Contains(s, `","expires_in":3`) && strings.HasSuffix(s, `,"token_type":"Bearer"}`+"\n")
		}},
	} {
		var out, errb bytes.Buffer
		code := run([]string{"token", "--format", c.format}, &IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb})
		if code != 0 || !c.want(out.String()) {
			t.Errorf("--format %s: exit %d, unexpected output (%d bytes): %s", c.format,
				code, out.Len(), strings.ReplaceAll(out.String(), access, "[token]")+errb.String())
		}
	}
}
