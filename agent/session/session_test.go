package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/ipc"
)

// refusingKeeper can keep nothing: CheckWritable fails with err.
type refusingKeeper struct{ err error }

func (k refusingKeeper) CheckWritable(context.Context, string) error { return k.err }
func (k refusingKeeper) Replace(context.Context, string, store.Record, func(store.Record) (func(), error)) (store.Record, error) {
	return store.Record{}, errors.New("Replace called after CheckWritable failed")
}
func (k refusingKeeper) Remove(context.Context, string) (store.Record, error) {
	return store.Record{}, store.ErrNotFound
}
func (k refusingKeeper) Describe(string) string { return "nowhere" }

// A sign-in whose login could not be kept never starts: the provider is
// not asked for anything, and the refusal says whose fix it is.
func TestSignInRefusedWhenStoreCanNotWrite(t *testing.T) {
	keychainDown := &store.UnavailableError{Op: "check", Err: errors.New("no session bus here")}
	for _, tc := range []struct {
		name   string
		err    error
		system bool
		want   []string
	}{
		{"system profile, no keychain", keychainDown, true, []string{"only your administrator", "/etc/kc-agent/config.yaml", "store: file"}},
		{"user profile, no keychain", keychainDown, false, []string{"add `store: file` to profile \"lab\" in /home/u/.config/kc-agent/config.yaml"}},
		{"file store, state dir read-only", fmt.Errorf("can not write in the token directory /s/tokens: permission denied"), false, []string{"state directory", "KC_AGENT_STATE_DIR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "/home/u/.config/kc-agent/config.yaml"
			if tc.system {
				src = "/etc/kc-agent/config.yaml"
			}
			svc := New(func(name string) (Profile, error) {
				return Profile{Config: config.Profile{Issuer: "https://sso.example.com/realms/r"}, Source: src, System: tc.system}, nil
			}, refusingKeeper{tc.err}, nil)
			svc.NewClient = func(context.Context, config.Profile) (*oidc.Client, error) {
				t.Error("the provider was contacted for a sign-in whose login could not be kept")
				return nil, errors.New("no")
			}
			defer svc.Close()
			_, err := svc.StartLogin(context.Background(), ipc.LoginRequest{Profile: "lab"})
			var e *ipc.Error
			if !errors.As(err, &e) || e.Code != ipc.CodeConfig || ipc.HTTPStatus(e.Code) != 503 {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(e.Message, "not starting the sign-in") || !strings.Contains(e.Message, tc.err.Error()) {
				t.Errorf("message %q", e.Message)
			}
			for _, w := range tc.want {
				if !strings.Contains(e.Hint, w) {
					t.Errorf("hint lacks %q: %s", w, e.Hint)
				}
			}
			if len(svc.SignIns()) != 0 {
				t.Error("a refused sign-in shows in status")
			}
		})
	}
}

// Requests name profiles by the config's one rule.
func TestStartLoginChecksRequest(t *testing.T) {
	svc := New(func(string) (Profile, error) { return Profile{}, errors.New("not reached") }, refusingKeeper{}, nil)
	for _, req := range []ipc.LoginRequest{
		{Profile: strings.Repeat("x", 65)},
		{Profile: "../etc"},
		{Profile: "ok", Flow: "carrier-pigeon"},
	} {
		_, err := svc.StartLogin(context.Background(), req)
		var e *ipc.Error
		if !errors.As(err, &e) || e.Code != ipc.CodeBadRequest {
			t.Errorf("%+v: %v", req, err)
		}
	}
	if _, err := svc.StartLogin(context.Background(), ipc.LoginRequest{Profile: strings.Repeat("x", 64)}); err == nil || err.Error() != "not reached" {
		t.Errorf("a 64-character name: %v", err)
	}
}

// Logout of a profile with nothing stored says so and asks nobody.
func TestLogoutNothingStored(t *testing.T) {
	svc := New(func(string) (Profile, error) { return Profile{}, nil }, refusingKeeper{}, nil)
	svc.NewClient = func(context.Context, config.Profile) (*oidc.Client, error) {
		t.Error("the provider was contacted with nothing to end")
		return nil, errors.New("no")
	}
	out, err := svc.Logout(context.Background(), ipc.LogoutRequest{})
	if err != nil || out.LoggedIn || out.Profile != config.DefaultProfile {
		t.Fatalf("%+v %v", out, err)
	}
}
