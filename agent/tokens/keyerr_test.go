package tokens

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/dpop"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
)

// flakyKeys fails Get with err while failing is set, then reads its
// store.
type flakyKeys struct {
	store.KeyStore
	err     error
	failing atomic.Bool
	gets    atomic.Int32
}

func (k *flakyKeys) Get(ctx context.Context, p string) (crypto.Signer, error) {
	k.gets.Add(1)
	if k.failing.Load() {
		return nil, k.err
	}
	return k.KeyStore.Get(ctx, p)
}

// Reading a bound login's key fails for a passing reason (EMFILE under
// load, EIO or ESTALE on an NFS home): transient, retried with backoff.
// Only a stored key that is not usable (store.ErrKeyUnusable) asks for a
// new login.
func TestTransientKeyReadErrorIsNotLoginRequired(t *testing.T) {
	old := KeysFor
	t.Cleanup(func() { KeysFor = old })
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.EIO, syscall.ESTALE} {
		KeysFor = func(config.Profile) (store.KeyStore, error) {
			k := &flakyKeys{err: fmt.Errorf("reading DPoP key file: %w", errno)}
			k.failing.Store(true)
			return k, nil
		}
		_, err := loginKey(context.Background(), "default", config.Profile{}, store.Record{KeyThumbprint: "x"})
		if oidc.KindOf(err) != oidc.KindTransient {
			t.Errorf("%v reading the key file: %v (%v); want a transient error", errno, err, oidc.KindOf(err))
		}
	}
	KeysFor = func(config.Profile) (store.KeyStore, error) {
		k := &flakyKeys{err: fmt.Errorf("the stored DPoP key is corrupt: %w", store.ErrKeyUnusable)}
		k.failing.Store(true)
		return k, nil
	}
	if _, err := loginKey(context.Background(), "default", config.Profile{}, store.Record{KeyThumbprint: "x"}); oidc.KindOf(err) != oidc.KindLoginRequired {
		t.Errorf("an unusable stored key: %v (%v); want login required", err, oidc.KindOf(err))
	}
}

// tokenEndpoint is a provider that answers every refresh with a Bearer
// token (discovery and the token endpoint).
func tokenEndpoint(t *testing.T) string {
	var iss string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
			fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":%q,"token_endpoint":%q,"jwks_uri":%q}`, iss, iss+"/auth", iss+"/token", iss+"/certs")
			return
		}
		w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-0"}`))
	}))
	t.Cleanup(srv.Close)
	iss = srv.URL + "/realms/r"
	return iss
}

// A bound login whose key can't be read for a while: the profile is
// degraded (not login_required), status says why, the next try waits
// for a growing backoff (no tight loop), and the refresh works again once
// the key reads.
func TestKeyReadErrorDegradesAndRecovers(t *testing.T) {
	h := newHarness(t, time.Hour)
	iss := tokenEndpoint(t)
	keys := &flakyKeys{KeyStore: &store.FileKeys{Dir: t.TempDir()}, err: fmt.Errorf("reading DPoP key file: %w", syscall.ESTALE)}
	old := KeysFor
	KeysFor = func(config.Profile) (store.KeyStore, error) { return keys, nil }
	t.Cleanup(func() { KeysFor = old })
	key, _ := dpop.NewKey()
	keys.Put(context.Background(), "default", key)
	rec, _ := h.st.Get(context.Background(), "default")
	BindRecord(key, config.DPoPRefresh, &rec)
	h.st.Put(context.Background(), "default", rec)
	h.m.NewClient = func(ctx context.Context, p config.Profile) (Refresher, error) {
		return oidc.New(ctx, iss, "kc-agent", oidc.Options{})
	}
	h.m.Reload("default")
	keys.failing.Store(true)
	var waits []time.Duration
	for range 2 {
		_, err := h.token(t, 0)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeUnavailable {
			t.Fatalf("a key that can't be read: %v; want unavailable", err)
		}
		p := h.m.pr(t)
		p.mu.Lock()
		state, lastErr, hint, wait := p.state, p.lastErr, p.hint, p.retryAt.Sub(p.m.now())
		p.mu.Unlock()
		if state != StateDegraded || !strings.Contains(lastErr, "can not read the login's DPoP key") || !strings.Contains(lastErr, "stale") || !strings.Contains(hint, "retries with backoff") {
			t.Fatalf("status: %s, %q (hint %q); want degraded, saying why", state, lastErr, hint)
		}
		waits = append(waits, wait)
	}
	if waits[0] <= 0 || waits[1] <= waits[0] {
		t.Fatalf("retries after %v, then %v: want a backoff", waits[0], waits[1])
	}
	keys.failing.Store(false)
	if _, err := h.token(t, 0); err != nil {
		t.Fatalf("once the key reads again: %v", err)
	}
}

// Manager.Replace: when the record can't be stored, accept's undo runs,
// still under the profile's slot (no refresh in between).
func TestReplaceUndoesWhenTheRecordCanNotBeStored(t *testing.T) {
	h := newHarness(t, time.Hour)
	h.st.mu.Lock()
	h.st.putErr = errors.New("the keychain is locked")
	h.st.mu.Unlock()
	var undone, slotHeld bool
	_, err := h.m.Replace(context.Background(), "default", store.Record{RefreshToken: "new"}, func(store.Record) (func(), error) {
		return func() {
			undone = true
			p := h.m.pr(t)
			select {
			case p.sem <- struct{}{}:
				<-p.sem
			default:
				slotHeld = true
			}
		}, nil
	})
	if err == nil || !undone || !slotHeld {
		t.Fatalf("Replace: %v; undo ran: %v, under the slot: %v", err, undone, slotHeld)
	}
}
