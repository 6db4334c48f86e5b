package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
)

type emptyStore struct{}

func (emptyStore) Get(context.Context, string) (store.Record, error) {
	return store.Record{}, store.ErrNotFound
}
func (emptyStore) Put(context.Context, string, store.Record) error { return nil }
func (emptyStore) Delete(context.Context, string) error            { return nil }
func (emptyStore) Describe() string                                { return "empty" }
func (emptyStore) CheckWritable(context.Context) error             { return nil }

func testDaemon(t testing.TB) http.Handler {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := tokens.NewManager(log)
	m.StoreFor = func(config.Profile) (store.Store, error) { return emptyStore{}, nil }
	cfg, _ := config.Parse("c.yaml", []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\n"))
	m.SetConfig(cfg)
	t.Cleanup(m.Close)
	d := &Daemon{opts: Options{Version: "test"}, log: log, mgr: m, started: time.Now(), cfg: cfg}
	d.logins = d.newSessions()
	return ipc.NewServer(d.routes()).Handler
}

// FuzzTokenRequest feeds arbitrary bodies to the token endpoint: the answer
// is always a typed JSON error or a token, never a crash or a 500.
func FuzzTokenRequest(f *testing.F) {
	f.Add([]byte(`{"profile":"default"}`))
	f.Add([]byte(`{"profile":"default","scopes":["a","b"],"min_valid":30}`))
	f.Add([]byte(`{"min_valid":1e308}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"profile":"\u0000"}`))
	h := testDaemon(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "http://"+ipc.Host+ipc.PathToken, bytes.NewReader(body))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))
		if rec.Code == http.StatusInternalServerError || rec.Code == http.StatusOK {
			t.Fatalf("HTTP %d for %q: %s", rec.Code, body, rec.Body)
		}
		if !strings.Contains(rec.Body.String(), `"error"`) {
			t.Fatalf("untyped error body: %s", rec.Body)
		}
	})
}

func TestStatusEndpoint(t *testing.T) {
	h := testDaemon(t)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://"+ipc.Host+ipc.PathStatus, nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"name": "default"`) {
		t.Fatalf("status: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://"+ipc.Host+"/v2/nothing", nil))
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("unknown path: %d %s", rec.Code, rec.Body)
	}
}
