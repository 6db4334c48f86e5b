package oidc

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// tokenEndpoint is a fake token endpoint for device polls: it answers
// each poll with the next of answers (the last repeats) and records when
// each poll came, in the bubble's time.
type tokenEndpoint struct {
	t       *testing.T
	answers []string // OAuth error codes; "" answers tokens, "503" a server error
	mu      sync.Mutex
	at      []time.Duration
	start   time.Time
}

func (f *tokenEndpoint) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	if form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code" || form.Get("device_code") != "DC" ||
		form.Get("client_id") != "kc-agent" || form.Get("code_verifier") == "" {
		f.t.Errorf("poll form: %v", form)
	}
	f.mu.Lock()
	f.at = append(f.at, time.Since(f.start))
	code := f.answers[min(len(f.at), len(f.answers))-1]
	f.mu.Unlock()
	status, doc := 400, `{"error":"`+code+`"}`
	switch code {
	case "":
		status, doc = 200, `{"access_token":"at","refresh_token":"rt","token_type":"Bearer","expires_in":300}`
	case "503":
		status, doc = 503, `{}`
	}
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader(doc)), Header: http.Header{}, Request: r}, nil
}

func (f *tokenEndpoint) polls() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.at...)
}

func fakeDevice(t *testing.T, interval time.Duration, answers ...string) (*DeviceLogin, *tokenEndpoint) {
	f := &tokenEndpoint{t: t, answers: answers, start: time.Now()}
	c := &Client{ClientID: "kc-agent", HTTP: &http.Client{Transport: f}, meta: metadata{TokenURL: "https://idp.example/token"}}
	return &DeviceLogin{c: c, deviceCode: "DC", verifier: "V", Interval: interval}, f
}

func secs(ds ...float64) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = time.Duration(d * float64(time.Second))
	}
	return out
}

// Polls come at the interval plus the margin (never at exactly the
// interval, which Keycloak answers with slow_down); a slow_down adds 5 s
// for the next poll only: the next authorization_pending brings the wait
// back to the interval.
func TestDevicePollSchedule(t *testing.T) {
	cases := []struct {
		name     string
		interval time.Duration
		answers  []string
		want     []time.Duration
		err      string // the OAuth code of the error poll returns, "" for tokens
	}{
		{"pending then tokens", 5 * time.Second, []string{"authorization_pending", "authorization_pending", ""}, secs(5.5, 11, 16.5), ""},
		{"interval 1 s", time.Second, []string{"authorization_pending", "authorization_pending", "authorization_pending", ""}, secs(1.5, 3, 4.5, 6), ""},
		{"slow_down once comes back down", 5 * time.Second, []string{"slow_down", "authorization_pending", "authorization_pending", ""}, secs(5.5, 16, 21.5, 27), ""},
		{"slow_down twice adds up", 5 * time.Second, []string{"slow_down", "slow_down", "authorization_pending", ""}, secs(5.5, 16, 31.5, 37), ""},
		{"server errors back off", 5 * time.Second, []string{"503", "503", "503", "503", "authorization_pending", ""}, secs(5.5, 16.5, 38.5, 82.5, 142.5, 148), ""},
		{"denied ends it", 5 * time.Second, []string{"authorization_pending", "access_denied"}, secs(5.5, 11), "access_denied"},
		{"expired ends it", 5 * time.Second, []string{"expired_token"}, secs(5.5), "expired_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d, f := fakeDevice(t, tc.interval, tc.answers...)
				tok, err := d.poll(context.Background())
				var oe *Error
				switch {
				case tc.err == "" && (err != nil || tok.RefreshToken != "rt"):
					t.Fatalf("poll: %v", err)
				case tc.err != "" && (!errors.As(err, &oe) || oe.Code != tc.err):
					t.Fatalf("poll: %v, want %s", err, tc.err)
				}
				if got := f.polls(); !equalDurations(got, tc.want) {
					t.Fatalf("polls at %v, want %v", got, tc.want)
				}
			})
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A sign-in nobody approves ends when its device code does, as expired,
// without a poll after the end.
func TestDeviceWaitExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, f := fakeDevice(t, 5*time.Second, "authorization_pending")
		d.Expiry = time.Now().Add(12 * time.Second)
		_, err := d.Wait(context.Background())
		var oe *Error
		if !errors.As(err, &oe) || oe.Code != "expired_token" || KindOf(err) != KindDenied {
			t.Fatalf("Wait: %v", err)
		}
		if got := f.polls(); !equalDurations(got, secs(5.5, 11)) {
			t.Fatalf("polls at %v", got)
		}
	})
}

// A cancelled sign-in stops polling at once.
func TestDeviceWaitCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, f := fakeDevice(t, 5*time.Second, "authorization_pending")
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(7*time.Second, cancel)
		_, err := d.Wait(ctx)
		if KindOf(err) != KindDenied || !strings.Contains(err.Error(), "cancelled") {
			t.Fatalf("Wait: %v", err)
		}
		if got := f.polls(); len(got) != 1 {
			t.Fatalf("polls at %v", got)
		}
	})
}
