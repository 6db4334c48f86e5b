//go:build unix

package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/dpopapi"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

// Issue 29, "done when": with the realm's refresh-token-only policy, an
// analyst's login with the default mode (auto) is bound, and an existing
// Bearer API works unchanged: one that checks every token at Keycloak
// (introspection) and refuses a DPoP-bound one. Through a route, and with
// `kc-agent token --format header` into real curl, across refreshes that
// rotate the offline token (the realm revokes refresh tokens).
func TestDPoPRefreshModeBearerAPIUnchanged(t *testing.T) {
	testenv.SecretService(t)
	e := newCLIEnv(t)
	kc := e.keycloak()
	realm := modesRealm(t, kc, keycloak.RealmRotation, true)
	issuer := kc.Issuer(realm)
	e.writeProfile(config.Profile{Issuer: issuer})
	api, apiURL := dpopapi.Start(t, dpopapi.Options{Mode: dpopapi.ModeBearer, Issuer: issuer, ClientID: "warehouse-api", ClientSecret: "unused-test-secret"})
	f := &dpopAPIs{e: e, proxy: freeAddr(t)}
	e.appendConfig(fmt.Sprintf("routes:\n  - name: api\n    upstream: %s/v1\n    profile: %s\nproxy:\n  listen: %s\n", apiURL, e.profile, f.proxy))
	e.startAgent()
	e.login(realm, "alice", "alice-pw")
	first, _ := e.checkBound()
	if first.DPoP != config.DPoPRefresh {
		t.Fatalf("the login was kept in mode %q, want refresh", first.DPoP)
	}
	for i := range 3 {
		if code, body := f.through(t, "GET", "/api/items", ""); code != 200 || !strings.Contains(body, `"user":"alice"`) || !strings.Contains(body, `"scheme":"Bearer"`) {
			t.Fatalf("round %d, the Bearer API through the route: HTTP %d %s", i, code, body)
		}
		if _, code, stderr := e.tokenJSON("--force-refresh"); code != 0 {
			t.Fatalf("round %d, refresh: exit %d: %s", i, code, stderr)
		}
	}
	code, header, stderr := e.run("token", "--profile", e.profile, "--format", "header")
	if code != 0 || !strings.HasPrefix(header, "Authorization: Bearer ") {
		t.Fatalf("token --format header: exit %d: %s", code, stderr)
	}
	curl := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "@-", apiURL+"/v1/items")
	curl.Stdin = strings.NewReader(header)
	out, err := curl.Output()
	if err != nil || string(out) != "200" {
		t.Fatalf("curl with the header: %s (%v)", out, err)
	}
	if after, _ := e.checkBound(); after.RefreshToken == first.RefreshToken || after.DPoP != config.DPoPRefresh {
		t.Fatalf("after the refreshes: rotated %v, mode %q", after.RefreshToken != first.RefreshToken, after.DPoP)
	}
	if st := api.Stats(); st.Accepted != 4 || len(st.Refused) != 0 {
		t.Fatalf("the Bearer API accepted %d, refused %v; want 4, none", st.Accepted, st.Refused)
	}
}
