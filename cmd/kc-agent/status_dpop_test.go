package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/ipc"
)

// status's text says the configured mode, the login's and its key, and the
// note on how to bind an unbound login; a profile without the fields (an
// older agent) shows no dpop row.
func TestStatusDPoPLines(t *testing.T) {
	var b bytes.Buffer
	printStatus(&b, &ipc.StatusResponse{Profiles: []ipc.ProfileStatus{
		{Name: "a", State: ipc.StateActive, DPoPMode: "auto", DPoPLogin: "refresh", DPoPKey: "matches"},
		{Name: "b", State: ipc.StateActive, DPoPMode: "refresh", DPoPLogin: "off", DPoPNote: "the stored login is not bound to a key; sign in again to bind it"},
		{Name: "c", State: ipc.StateActive},
	}})
	out := b.String()
	for _, want := range []string{
		"dpop       auto (the default); the login is bound to a key (refresh: Bearer access tokens); key: matches",
		"dpop       refresh; the login is not bound to a key",
		"dpop note  the stored login is not bound to a key; sign in again to bind it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not say %q:\n%s", want, out)
		}
	}
	if c := out[strings.Index(out, "profile c"):]; strings.Contains(c, "dpop") {
		t.Errorf("a profile without DPoP fields shows a dpop row:\n%s", c)
	}
}
