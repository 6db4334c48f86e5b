package main

import (
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/ipc"
)

// Each proxy warning in doctor carries its own hint (a cleartext upstream
// is not fixed by the advice for a moved port, and the other way round),
// and a proxy waiting for its address says so with the agent's hint.
func TestDoctorProxyWarningsHaveTheirOwnHints(t *testing.T) {
	ps := ipc.ProxyStatus{Configured: true, Running: false, Retrying: true, Error: "proxy can not listen on 127.1.0.0:8421: the port is taken by uid 65534 (another user)",
		Hint:         "the proxy starts by itself once the address is free",
		Warnings:     []string{"route a sends your token in the clear to api:80 (unsafe_cleartext_upstream)", "the proxy's port is picked anew at each start", "something new"},
		WarningHints: []string{"use an https:// upstream", "restart those programs, and set proxy.listen: auto"}}
	got := proxyChecks(ps, nil)
	if len(got) != 4 {
		t.Fatalf("checks: %+v", got)
	}
	if got[0].status != "FAIL" || !strings.Contains(got[0].detail, "waiting for its address") || got[0].hint != ps.Hint {
		t.Errorf("a proxy waiting for its address: %+v", got[0])
	}
	for i, want := range []string{"use an https:// upstream", "restart those programs, and set proxy.listen: auto", ""} {
		if c := got[i+1]; c.status != "warn" || c.detail != ps.Warnings[i] || c.hint != want {
			t.Errorf("warning %d: %+v, want hint %q", i, c, want)
		}
	}
}
