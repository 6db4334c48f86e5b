package session

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/ipc"
)

const storedToken = "stored-offline-token-never-shown"

// removingKeeper holds one login, which Remove hands over.
type removingKeeper struct{ rec store.Record }

func (k removingKeeper) CheckWritable(context.Context, string) error { return nil }
func (k removingKeeper) Replace(context.Context, string, store.Record, func(store.Record) (func(), error)) (store.Record, error) {
	return k.rec, nil
}
func (k removingKeeper) Remove(context.Context, string) (store.Record, error) { return k.rec, nil }
func (k removingKeeper) Describe(string) string                               { return "test keeper" }

// fakeProvider answers discovery, refresh and revocation, and its
// account API's consent removal with accountStatus; revoked counts the
// revocations.
func fakeProvider(t *testing.T, accountStatus int, revoked *int) string {
	t.Helper()
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := issuer + "/protocol/openid-connect"
		switch r.URL.Path {
		case "/realms/r/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "authorization_endpoint": base + "/auth",
				"token_endpoint": base + "/token", "end_session_endpoint": base + "/logout", "revocation_endpoint": base + "/revoke"})
		case "/realms/r/protocol/openid-connect/token":
			json.NewEncoder(w).Encode(map[string]any{"access_token": "fresh-access-token", "token_type": "Bearer", "expires_in": 60})
		case "/realms/r/protocol/openid-connect/revoke":
			*revoked++
		case "/realms/r/account/applications/kc-agent/consent":
			w.WriteHeader(accountStatus)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	issuer = srv.URL + "/realms/r"
	return issuer
}

func logoutAll(t *testing.T, accountStatus int) (*ipc.LogoutResponse, int) {
	t.Helper()
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	var revoked int
	issuer := fakeProvider(t, accountStatus, &revoked)
	rec := store.Record{RefreshToken: storedToken, Issuer: issuer, ClientID: "kc-agent", Username: "alice"}
	prof := Profile{Config: config.Profile{Issuer: issuer, ClientID: "kc-agent", Store: config.StoreFile}}
	svc := New(func(string) (Profile, error) { return prof, nil }, removingKeeper{rec}, nil)
	svc.NewClient = func(ctx context.Context, p config.Profile) (*oidc.Client, error) {
		return oidc.New(ctx, p.Issuer, p.ClientID, oidc.Options{UnsafeCleartext: true})
	}
	out, err := svc.Logout(context.Background(), ipc.LogoutRequest{Profile: "p", All: true})
	if err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if strings.Contains(out.RemoteError, storedToken) || strings.Contains(out.RemoteError, "fresh-access-token") {
		t.Fatal("the answer shows a token")
	}
	return out, revoked
}

// The account API ends every session; the stored token is revoked too.
func TestLogoutAllThroughTheAccountAPI(t *testing.T) {
	out, revoked := logoutAll(t, http.StatusNoContent)
	if out.Remote != ipc.RemoteEnded || revoked != 1 {
		t.Fatalf("remote %q (%s), %d revocations", out.Remote, out.RemoteError, revoked)
	}
}

// A refusal of the account API (the user lacks manage-account) still
// revokes this machine's session, and the answer says the others live on
// and where to end them.
func TestLogoutAllFallsBackToRevocation(t *testing.T) {
	out, revoked := logoutAll(t, http.StatusForbidden)
	if out.Remote != ipc.RemoteEndedHere || revoked != 1 {
		t.Fatalf("remote %q, %d revocations", out.Remote, revoked)
	}
	for _, want := range []string{"manage-account", "/realms/r/account", "account console", "administrator"} {
		if !strings.Contains(out.RemoteError, want) {
			t.Errorf("the note does not say %q: %s", want, out.RemoteError)
		}
	}
}
