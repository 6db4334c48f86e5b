package tokens

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
)

// idIdP adds an ID token to every refresh of fakeIdP, the way Keycloak does
// when openid is in scope. Its iat is skewed an hour into the past: only
// exp minus iat may count.
type idIdP struct {
	*fakeIdP
	idLifetime time.Duration
	noID       bool

	mu     sync.Mutex
	scopes [][]string
}

func fakeJWT(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(claims)) + ".sig"
}

func (f *idIdP) Refresh(ctx context.Context, rt string, scopes []string) (*oidc.Token, error) {
	f.mu.Lock()
	f.scopes = append(f.scopes, slices.Clone(scopes))
	f.mu.Unlock()
	tok, err := f.fakeIdP.Refresh(ctx, rt, scopes)
	if err != nil || f.noID {
		return tok, err
	}
	iat := time.Now().Add(-time.Hour).Unix()
	n := strings.TrimPrefix(tok.AccessToken, "at-")
	tok.IDToken = fakeJWT(fmt.Sprintf(`{"n":%q,"iat":%d,"exp":%d}`, n, iat, iat+int64(f.idLifetime/time.Second)))
	return tok, nil
}

func (f *idIdP) lastScopes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.scopes) == 0 {
		return nil
	}
	return f.scopes[len(f.scopes)-1]
}

// idNumber is the refresh an ID token came from (its "n" claim).
func idNumber(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT")
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_, rest, _ := strings.Cut(string(payload), `"n":"`)
	n, _, _ := strings.Cut(rest, `"`)
	return n
}

func newIDHarness(t *testing.T, lifetime, idLifetime time.Duration) (*harness, *idIdP) {
	h := newHarness(t, lifetime)
	idp := &idIdP{fakeIdP: h.idp, idLifetime: idLifetime}
	h.m.NewClient = func(context.Context, config.Profile) (Refresher, error) { return idp, nil }
	return h, idp
}

func (h *harness) get(t *testing.T, req Request) (Access, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req.Profile = "default"
	return h.m.Token(ctx, req)
}

// The ID token comes from the same refresh as the access token and is
// cached beside it: asking for one after the other costs no refresh.
func TestIDTokenCachedBesideAccessToken(t *testing.T) {
	h, _ := newIDHarness(t, time.Hour, time.Hour)
	id, err := h.get(t, Request{ID: true})
	if err != nil {
		t.Fatal(err)
	}
	at, err := h.get(t, Request{})
	if err != nil {
		t.Fatal(err)
	}
	if at.Token != "at-1" || idNumber(t, id.Token) != "1" {
		t.Fatalf("access %s, ID token from refresh %s; want both from refresh 1", at.Token, idNumber(t, id.Token))
	}
	if id.Type != "Bearer" || id.Token == at.Token {
		t.Fatalf("ID request got type %q or the access token", id.Type)
	}
	if _, err := h.get(t, Request{ID: true}); err != nil {
		t.Fatal(err)
	}
	if n := h.idp.calls.Load(); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	// A forced ID request gets an ID token issued after it arrived.
	forced, err := h.get(t, Request{ID: true, Force: true})
	if err != nil || idNumber(t, forced.Token) != "2" {
		t.Fatalf("forced: %v, refresh %s", err, idNumber(t, forced.Token))
	}
}

func TestIDTokenSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newIDHarness(t, time.Hour, time.Hour)
		h.idp.delay = 50 * time.Millisecond
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := h.get(t, Request{ID: i%2 == 0})
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := h.idp.calls.Load(); n != 1 {
			t.Fatalf("100 concurrent callers (ID and access) caused %d refreshes, want 1", n)
		}
	})
}

// An ID request with its own scopes asks for openid too, and shares the
// cache entry of that scope set with access requests.
func TestIDTokenPerScopeSet(t *testing.T) {
	h, idp := newIDHarness(t, time.Hour, time.Hour)
	if _, err := h.get(t, Request{ID: true}); err != nil {
		t.Fatal(err)
	}
	if s := idp.lastScopes(); s != nil {
		t.Fatalf("the profile's own scopes refresh with no scope parameter, got %q", s)
	}
	id, err := h.get(t, Request{ID: true, Scopes: []string{"kube"}})
	if err != nil {
		t.Fatal(err)
	}
	if s := idp.lastScopes(); !slices.Equal(s, []string{"kube", "openid"}) {
		t.Fatalf("scopes sent: %q, want kube openid", s)
	}
	if idNumber(t, id.Token) != "2" {
		t.Fatalf("another scope set needs its own refresh")
	}
	at, err := h.get(t, Request{Scopes: []string{"openid", "kube"}})
	if err != nil || at.Token != "at-2" || h.idp.calls.Load() != 2 {
		t.Fatalf("access for the same scope set: %v %s after %d refreshes", err, at.Token, h.idp.calls.Load())
	}
}

// The ID token's expiry is its own lifetime (exp - iat), counted from when
// it arrived; it drives min_valid and the refresh-ahead point.
func TestIDTokenLifetime(t *testing.T) {
	h, _ := newIDHarness(t, time.Hour, 2*time.Minute)
	before := time.Now()
	id, err := h.get(t, Request{ID: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := id.ExpiresAt.Sub(before); d < 2*time.Minute-time.Second || d > 2*time.Minute+time.Second {
		t.Fatalf("ID token expires in %s, want 2m (its iat is an hour off; only exp-iat counts)", d)
	}
	// Past 80% of the ID token's life, a refresh is due although the access
	// token has most of its hour left.
	h.m.mu.Lock()
	next := h.m.profiles["default"].access[""].refreshAt
	h.m.mu.Unlock()
	if d := next.Sub(before); d > 2*time.Minute*80/100+time.Second {
		t.Fatalf("refresh ahead in %s, want by 80%% of the ID token's 2m", d)
	}
	// More validity than the cached ID token has left: a refresh.
	h.clock.Store(int64(time.Minute))
	id2, err := h.get(t, Request{ID: true, MinValid: 90 * time.Second})
	if err != nil || idNumber(t, id2.Token) != "2" {
		t.Fatalf("min_valid beyond the ID token's life: %v, refresh %s", err, idNumber(t, id2.Token))
	}
	// More than an ID token ever lives counts as half of the ID token's
	// lifetime (not the access token's hour): the cached one will do.
	id3, err := h.get(t, Request{ID: true, MinValid: 3 * time.Minute})
	if err != nil || id3.Token != id2.Token {
		t.Fatalf("min_valid beyond any ID token's life: %v, refresh %s", err, idNumber(t, id3.Token))
	}
}

func TestNoIDTokenIsAConfigError(t *testing.T) {
	h, idp := newIDHarness(t, time.Hour, time.Hour)
	idp.noID = true
	_, err := h.get(t, Request{ID: true})
	var te *Error
	if !errors.As(err, &te) || te.Code != CodeConfig || !strings.Contains(te.Msg, "no ID token") || te.Hint == "" {
		t.Fatalf("got %v", err)
	}
	// The access token still serves (from the first refresh, or from one
	// the failed ID request set off under a slow -race run).
	if a, err := h.get(t, Request{}); err != nil || !strings.HasPrefix(a.Token, "at-") {
		t.Fatalf("the access token still serves: %v", err)
	}
}

func TestJWTLifetime(t *testing.T) {
	for name, tc := range map[string]struct {
		jwt  string
		want time.Duration
	}{
		"exp-iat":        {fakeJWT(`{"iat":1000,"exp":1300}`), 300 * time.Second},
		"not a jwt":      {"opaque", time.Minute},
		"bad base64":     {"a.!!!.c", time.Minute},
		"bad json":       {fakeJWT(`{`), time.Minute},
		"no iat":         {fakeJWT(`{"exp":1300}`), time.Minute},
		"exp before iat": {fakeJWT(`{"iat":1300,"exp":1000}`), time.Minute},
	} {
		if got := jwtLifetime(tc.jwt, time.Minute); got != tc.want {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
	}
}
