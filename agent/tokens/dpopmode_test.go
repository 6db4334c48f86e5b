package tokens

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
)

// bindFirst answers the first n refreshes with a bound access token, as
// Keycloak does where the realm binds access tokens (or, for the first
// token of a grant, even with refresh-token-only binding).
type bindFirst struct {
	Refresher
	n atomic.Int32
}

func (b *bindFirst) Refresh(ctx context.Context, rt string, scopes []string) (*oidc.Token, error) {
	tok, err := b.Refresher.Refresh(ctx, rt, scopes)
	if err == nil && b.n.Add(-1) >= 0 {
		tok.TokenType = "DPoP"
	}
	return tok, err
}

// boundHarness: the harness's login, bound in mode login, under a
// profile configured with mode; the provider binds the first n tokens.
func boundHarness(t *testing.T, login, mode string, n int32) (*harness, *bindFirst) {
	// Built whole before its one SetConfig: a harness configured first
	// and then changed would race its first configuration's background
	// work against the change.
	h := &harness{
		idp: &fakeIdP{current: "rt-0", lifetime: time.Hour},
		st: &fakeStore{rec: map[string]store.Record{"default": {RefreshToken: "rt-0", Issuer: issuer, ClientID: "kc-agent", Username: "alice",
			SavedAt: time.Now(), KeyThumbprint: "jkt", DPoP: login}}},
	}
	b := &bindFirst{Refresher: h.idp}
	b.n.Store(n)
	h.m = NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)))
	h.m.Now = func() time.Time { return time.Now().Add(time.Duration(h.clock.Load())) }
	h.m.NewClient = func(context.Context, config.Profile) (Refresher, error) { return b, nil }
	h.m.StoreFor = func(config.Profile) (store.Store, error) { return h.st, nil }
	cfg, err := config.Parse("c.yaml", []byte("profiles:\n  default:\n    issuer: "+issuer+"\n    dpop: "+mode+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	h.m.SetConfig(cfg)
	t.Cleanup(h.m.Close)
	return h, b
}

// A refresh-mode login never serves a bound access token as Bearer: a
// bound one is refreshed once more (its rotated offline token kept, never
// reused) and the Bearer one served.
func TestRefreshModeRefreshesABoundTokenAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := boundHarness(t, config.DPoPRefresh, config.DPoPAuto, 1)
		a, err := h.token(t, 0)
		if err != nil || a.Type != "Bearer" || a.Token != "at-2" {
			t.Fatalf("got %v %v, want the second refresh's Bearer token", a, err)
		}
		if n := h.idp.calls.Load(); n != 2 || h.idp.reused || h.st.token("default") != "rt-2" {
			t.Fatalf("%d refreshes, reused %v, stored %s", n, h.idp.reused, h.st.token("default"))
		}
	})
}

// Bound twice in a row: the realm binds access tokens. login_required
// with a hint that names the realm setting and the client, the newest
// offline token kept, and no more refreshes after it (no loop).
func TestRefreshModeFailsWhereTheRealmBindsAccessTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := boundHarness(t, config.DPoPRefresh, config.DPoPRefresh, 10)
		_, err := h.token(t, 0)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeLoginRequired || !strings.Contains(e.Hint, "allow-only-refresh-token-binding") ||
			!strings.Contains(e.Hint, "dpop-bind-enforcer") || !strings.Contains(e.Hint, "client kc-agent") || !strings.Contains(e.Hint, "`dpop: on`") {
			t.Fatalf("got %v", err)
		}
		if h.st.token("default") != "rt-2" || h.idp.reused {
			t.Fatalf("stored %s, reused %v", h.st.token("default"), h.idp.reused)
		}
		h.token(t, 0)
		time.Sleep(time.Hour)
		if n := h.idp.calls.Load(); n != 2 {
			t.Fatalf("%d refreshes, want 2 and then none", n)
		}
	})
}

// dpop: on accepts the bound access tokens of a refresh-mode login as they
// come (the user's way out of the error above without a new sign-in).
func TestOnServesBoundTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := boundHarness(t, config.DPoPRefresh, config.DPoPOn, 10)
		a, err := h.token(t, 0)
		if err != nil || a.Type != "DPoP" || h.idp.calls.Load() != 1 {
			t.Fatalf("got %v %v after %d refreshes", a, err, h.idp.calls.Load())
		}
	})
}

// SettleLogin: on needs no test refresh; refresh and auto take the mode
// from a test refresh (the grant's own bound token refreshed once or
// twice); bound twice is on for auto and the realm's error for refresh.
func TestSettleLogin(t *testing.T) {
	ctx := context.Background()
	grant := &oidc.Token{AccessToken: "at-0", RefreshToken: "rt-0", TokenType: "DPoP"}
	for _, tc := range []struct {
		mode    string
		bound   int32
		want    string
		calls   int32
		wantErr bool
	}{
		{config.DPoPOn, 5, config.DPoPOn, 0, false},
		{config.DPoPRefresh, 0, config.DPoPRefresh, 1, false},
		{config.DPoPAuto, 1, config.DPoPRefresh, 2, false},
		{config.DPoPAuto, 5, config.DPoPOn, 2, false},
		{config.DPoPRefresh, 5, "", 2, true},
	} {
		idp := &fakeIdP{current: "rt-0", lifetime: time.Minute}
		b := &bindFirst{Refresher: idp}
		b.n.Store(tc.bound)
		tok, mode, err := SettleLogin(ctx, config.Profile{DPoP: tc.mode}, b, "kc-agent", grant)
		if mode != tc.want || (err != nil) != tc.wantErr || idp.calls.Load() != tc.calls || tok.RefreshToken != idp.current {
			t.Errorf("%s, %d bound: mode %q err %v after %d refreshes, token %s of %s", tc.mode, tc.bound, mode, err, idp.calls.Load(), tok.RefreshToken, idp.current)
		}
		if tc.wantErr && (oidc.KindOf(err) != oidc.KindConfig || !strings.Contains(oidc.HintOf(err), "allow-only-refresh-token-binding")) {
			t.Errorf("%s: %v", tc.mode, err)
		}
	}
}

// status says which mode is configured and which the login is in, and
// how to bind a login made before the mode (migration).
func TestDPoPStatus(t *testing.T) {
	for _, tc := range []struct {
		mode, jkt, login, note string
	}{
		{config.DPoPRefresh, "", config.DPoPOff, "not bound to a key (it was made before dpop: refresh); sign in again to bind it: `kc-agent login` (in a notebook: login(force=True))"},
		{config.DPoPAuto, "", config.DPoPOff, ""},
		{config.DPoPOff, "", config.DPoPOff, ""},
		{config.DPoPAuto, "k", config.DPoPOn, "which Bearer-only APIs refuse"},
		{config.DPoPOff, "k", config.DPoPOn, "dpop: off takes effect at the next sign-in"},
	} {
		p := &profile{name: config.DefaultProfile, cfg: config.Profile{DPoP: tc.mode, ClientID: "kc-agent"}, rec: store.Record{RefreshToken: "rt", KeyThumbprint: tc.jkt}}
		s := p.dpopStatusLocked()
		if s.Mode != tc.mode || s.Login != tc.login || (tc.note == "") != (s.Note == "") || !strings.Contains(s.Note, tc.note) {
			t.Errorf("%s/%q: %+v", tc.mode, tc.jkt, s)
		}
	}
	p := &profile{name: "lab", cfg: config.Profile{ClientID: "kc-agent"}, rec: store.Record{RefreshToken: "rt"}, realmDemands: true}
	if s := p.dpopStatusLocked(); !strings.Contains(s.Note, "demands DPoP proofs of client kc-agent") || !strings.Contains(s.Note, "kc-agent login --profile lab") {
		t.Errorf("auto, an enforcing realm, an unbound login: %+v", s)
	}
	if s := (&profile{cfg: config.Profile{}}).dpopStatusLocked(); s.Mode != config.DPoPAuto || s.Login != "" {
		t.Errorf("no login: %+v", s)
	}
	// The key check: from the last use of the key, unless the offline
	// token itself names another key than the record (cnf.jkt).
	jwt := func(jkt string) string {
		return "e30." + base64.RawURLEncoding.EncodeToString([]byte(`{"cnf":{"jkt":"`+jkt+`"}}`)) + ".sig"
	}
	p = &profile{rec: store.Record{RefreshToken: jwt("k"), KeyThumbprint: "k", DPoP: config.DPoPRefresh}, keyCheck: KeyMatches}
	if s := p.dpopStatusLocked(); s.Key != KeyMatches || s.Login != config.DPoPRefresh {
		t.Errorf("a matching key: %+v", s)
	}
	p.rec.RefreshToken = jwt("other")
	if s := p.dpopStatusLocked(); s.Key != KeyOtherToken {
		t.Errorf("a token bound to another key: %+v", s)
	}
}
