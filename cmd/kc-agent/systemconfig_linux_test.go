package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// The files are merged before the profiles routes name are checked, so a
// system route may name a profile only the user's file defines: the agent
// serves it. When the system file then breaks (a route naming a profile
// nobody defines; then a file others can write), the agent ignores it,
// status and doctor say so with its file:line, and the user's own profile
// keeps serving.
func TestSystemRouteOnAUserProfileThenBroken(t *testing.T) {
	e := newCLIEnv(t)
	kc := e.keycloak()
	e.login(keycloak.RealmTest, "alice", "alice-pw", "--store", "file")
	ca := testenv.NewTestCA(t)
	rs := testenv.StartResourceServer(t, ca, kc.Issuer(keycloak.RealmTest), "warehouse-api")
	addr := freeAddr(t)
	sys := systemConfig(t, fmt.Sprintf("routes:\n  - name: warehouse\n    upstream: %s/v1\n    profile: %s\nproxy:\n  listen: %s\n  ca_file: %s\n",
		rs.URL, e.profile, addr, ca.PEMPath))
	agent := e.startAgent()
	ctx := context.Background()
	if st, err := agent.client.Status(ctx); err != nil || st.SystemConfigError != "" || st.SystemConfig != sys {
		t.Fatalf("status: %v, system %q, ignored: %q", err, st.SystemConfig, st.SystemConfigError)
	}
	out, err := exec.Command("curl", "-sS", "-f", "--noproxy", "*", "--max-time", "10", "http://"+addr+"/warehouse/tables").CombinedOutput()
	var who testenv.WhoAmI
	if err != nil || json.Unmarshal(out, &who) != nil || who.User != "alice" {
		t.Fatalf("the system route on the user's profile: %v %s", err, out)
	}

	for _, tc := range []struct {
		name    string
		breakIt func() error
		want    string
	}{
		{"a route naming no profile", func() error {
			return os.WriteFile(sys, []byte("routes:\n  - name: warehouse\n    upstream: https://warehouse.example.com\n    profile: finance\n"), 0o644)
		}, sys + ":4: routes[0].profile: no profile \"finance\""},
		{"writable by others", func() error { return os.Chmod(sys, 0o666) }, "chmod go-w " + sys},
	} {
		if err := tc.breakIt(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool {
			st, err := agent.client.Status(ctx)
			return err == nil && strings.Contains(st.SystemConfigError, tc.want)
		}, tc.name+" in status")
		if tr, code, stderr := e.tokenJSON(); code != 0 || tr.AccessToken == "" {
			t.Fatalf("%s: the user's own profile stopped serving: %d %s", tc.name, code, stderr)
		}
		_, out, _ := e.run("status")
		if !strings.Contains(out, "system-wide config IGNORED") || !strings.Contains(out, tc.want) || !strings.Contains(out, e.profile) {
			t.Errorf("%s: status:\n%s", tc.name, out)
		}
		_, out, _ = e.run("doctor")
		if !strings.Contains(out, "FAIL  system config") || !strings.Contains(out, tc.want) {
			t.Errorf("%s: doctor:\n%s", tc.name, out)
		}
	}
	if !strings.Contains(agent.log.String(), "the system-wide config is ignored") {
		t.Error("the agent's log does not say the system file is ignored")
	}
}
