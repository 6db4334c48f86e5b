package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// The administrator's file as the README shows it for a shared host: the
// top-level store: file makes the user's own profile keep its token in a
// file, with no session bus and no --store flag. The files are merged
// before the profiles routes name are checked, so a system route may name
// the profile the user defined: the agent serves it; a system route
// naming a profile nobody defines is left out, with its line. When the
// system file then breaks (an invalid value; then a file others can
// write), the agent ignores it, status and doctor say so with file:line,
// and the user's own profile keeps serving.
func TestSystemFileForEveryUser(t *testing.T) {
	e := newCLIEnv(t)
	kc := e.keycloak()
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "") // no keychain here
	ca := testenv.NewTestCA(t)
	rs := testenv.StartResourceServer(t, ca, kc.Issuer(keycloak.RealmTest), "warehouse-api")
	addr := freeAddr(t)
	sys := systemConfig(t, fmt.Sprintf("store: file\nroutes:\n  - name: warehouse\n    upstream: %s/v1\n    profile: %s\n"+
		"  - name: lab\n    upstream: https://lab.example.com\n    profile: lab\nproxy:\n  listen: %s\n  ca_file: %s\n",
		rs.URL, e.profile, addr, ca.PEMPath))
	e.login(keycloak.RealmTest, "alice", "alice-pw")
	if p, _ := e.loadProfile(); p.Store != config.StoreFile {
		t.Fatalf("the system file's store: file did not apply to the user's profile: %q", p.Store)
	}
	agent := e.startAgent()
	ctx := context.Background()
	st, err := agent.client.Status(ctx)
	if err != nil || st.SystemConfigError != "" || st.SystemConfig != sys || len(st.LeftOutRoutes) != 1 ||
		!strings.HasPrefix(st.LeftOutRoutes[0], sys+":8: routes[1].profile: no profile \"lab\"") {
		t.Fatalf("status: %v, system %q, ignored %q, left out %q", err, st.SystemConfig, st.SystemConfigError, st.LeftOutRoutes)
	}
	out, err := exec.Command("curl", "-sS", "-f", "--noproxy", "*", "--max-time", "10", "http://"+addr+"/warehouse/tables").CombinedOutput()
	var who testenv.WhoAmI
	if err != nil || json.Unmarshal(out, &who) != nil || who.User != "alice" {
		t.Fatalf("the system route on the user's profile: %v %s", err, out)
	}
	_, text, _ := e.run("doctor")
	if !strings.Contains(text, "left out: "+sys+":8:") || !strings.Contains(text, "not checked: no profile keeps its token there") {
		t.Errorf("doctor:\n%s", text)
	}

	for _, tc := range []struct {
		name    string
		breakIt func() error
		want    string
	}{
		{"an invalid value", func() error {
			return os.WriteFile(sys, []byte("routes:\n  - name: warehouse\n    upstream: ftp://warehouse.example.com\n"), 0o644)
		}, sys + ":3: routes[0].upstream"},
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
