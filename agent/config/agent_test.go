package config

import (
	"errors"
	"testing"
	"time"
)

func TestIdleExit(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want time.Duration
		set  bool
		bad  bool
	}{
		{yaml: "", set: false},
		{yaml: "agent:\n  idle_exit: 30m\n", want: 30 * time.Minute, set: true},
		{yaml: "agent:\n  idle_exit: 2s\n", want: 2 * time.Second, set: true},
		{yaml: "agent:\n  idle_exit: \"0\"\n", want: 0, set: true},
		{yaml: "agent:\n  idle_exit: 0\n", want: 0, set: true},
		{yaml: "agent:\n  idle_exit: 10ms\n", bad: true},
		{yaml: "agent:\n  idle_exit: soon\n", bad: true},
		{yaml: "agent:\n  idle_exit: -5m\n", bad: true},
		{yaml: "agent:\n  idel_exit: 5m\n", bad: true},
	} {
		c, err := Parse("config.yaml", []byte(tc.yaml))
		if tc.bad {
			var ce *Error
			if !errors.As(err, &ce) || ce.Line == 0 {
				t.Errorf("%q: err = %v, want a config error with a line", tc.yaml, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		got, set := c.IdleExit()
		if got != tc.want || set != tc.set {
			t.Errorf("%q: IdleExit = %v, %v; want %v, %v", tc.yaml, got, set, tc.want, tc.set)
		}
	}
}

// The admin's file sets it for everyone; a user's own line wins.
func TestIdleExitMerge(t *testing.T) {
	sys, err := Parse("/etc/kc-agent/config.yaml", []byte("agent:\n  idle_exit: 10m\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user string
		want time.Duration
	}{
		{"", 10 * time.Minute},
		{"agent:\n  idle_exit: 1h\n", time.Hour},
		{"agent:\n  idle_exit: \"0\"\n", 0},
	} {
		user, err := Parse("config.yaml", []byte(tc.user))
		if err != nil {
			t.Fatal(err)
		}
		m, uerr, serr := merge(sys, user)
		if uerr != nil || serr != nil {
			t.Fatal(uerr, serr)
		}
		if got, set := m.IdleExit(); !set || got != tc.want {
			t.Errorf("user %q: IdleExit = %v, %v; want %v", tc.user, got, set, tc.want)
		}
	}
}
