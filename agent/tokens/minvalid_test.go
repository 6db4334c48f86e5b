package tokens

import (
	"testing"
	"testing/synctest"
	"time"
)

// grantsOver counts the refresh grants a caller asking every second for
// ten token lifetimes causes, and checks what it is served.
func grantsOver(t *testing.T, lifetime, minValid, atLeast time.Duration) int64 {
	var n int64
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, lifetime)
		end := time.Now().Add(10 * lifetime)
		for time.Now().Before(end) {
			a, err := h.token(t, minValid)
			if err != nil {
				t.Fatal(err)
			}
			if left := time.Until(a.ExpiresAt); left < atLeast {
				t.Fatalf("%s tokens: served one with %s left, want at least %s", lifetime, left, atLeast)
			}
			time.Sleep(time.Second)
		}
		n = int64(h.idp.calls.Load())
	})
	return n
}

// A caller that names no min_valid (the Python client's default, `kc-agent
// token`, the proxy) never brings a refresh forward: it causes no more
// grants than the refresh-ahead schedule makes anyway (one per 75-80% of
// a lifetime), while a fixed 60 s (the Python client's old default) did,
// with tokens of one to two minutes.
func TestDefaultMinValidNeverBringsRefreshesForward(t *testing.T) {
	for _, tc := range []struct {
		lifetime, atLeast time.Duration
	}{
		{60 * time.Second, 12 * time.Second}, // a fifth of the life
		{90 * time.Second, 18 * time.Second},
		{10 * time.Second, MinServe},
		{5 * time.Minute, time.Minute}, // DefaultMinValid
		{time.Hour, time.Minute},
	} {
		byDefault := grantsOver(t, tc.lifetime, 0, tc.atLeast)
		// 10 lifetimes at one grant per 75% of one (or, where MinServe is
		// more than a quarter of the life, per what is left above it),
		// plus the first.
		per := min(0.75, float64(tc.lifetime-tc.atLeast)/float64(tc.lifetime))
		if max := int64(10/per) + 2; byDefault > max {
			t.Errorf("%s tokens: %d refresh grants by default in 10 lifetimes, want at most %d", tc.lifetime, byDefault, max)
		}
		if tc.lifetime == 60*time.Second || tc.lifetime == 90*time.Second {
			fixed := grantsOver(t, tc.lifetime, time.Minute, 0)
			t.Logf("%s tokens, 10 lifetimes: %d grants by default, %d with min_valid 60s", tc.lifetime, byDefault, fixed)
			if fixed <= byDefault {
				t.Errorf("%s tokens: min_valid 60s made %d grants, the default %d: the test no longer shows the difference", tc.lifetime, fixed, byDefault)
			}
		}
	}
}

func TestDefaultNeed(t *testing.T) {
	for _, tc := range []struct{ lifetime, want time.Duration }{
		{10 * time.Second, MinServe},
		{30 * time.Second, 6 * time.Second},
		{60 * time.Second, 12 * time.Second},
		{300 * time.Second, time.Minute},
		{time.Hour, time.Minute},
	} {
		got := DefaultSchedule.defaultNeed(tc.lifetime)
		if got != tc.want {
			t.Errorf("defaultNeed(%s) = %s, want %s", tc.lifetime, got, tc.want)
		}
		if got > tc.lifetime/2 && got > MinServe {
			t.Errorf("defaultNeed(%s) = %s: more than half the lifetime", tc.lifetime, got)
		}
	}
}
