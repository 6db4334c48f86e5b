package tokens

import (
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
)

// status warns about a profile's risky options: an http issuer where who
// listens can not be checked, and endpoints accepted off the issuer.
func TestProfileWarnings(t *testing.T) {
	local := config.Profile{Issuer: "http://127.0.0.1:8080/realms/r", UnsafeCleartextIssuer: true}
	if w := profileWarnings(local, true); len(w) != 0 {
		t.Fatalf("checked loopback issuer: %v", w)
	}
	if w := profileWarnings(local, false); len(w) != 1 || !strings.Contains(w[0], "unsafe_cleartext_issuer") {
		t.Fatalf("unchecked loopback issuer: %v", w)
	}
	if w := profileWarnings(config.Profile{Issuer: "https://sso.example.com/realms/r", AllowForeignEndpoints: true}, true); len(w) != 1 || !strings.Contains(w[0], "allow_foreign_endpoints") {
		t.Fatalf("allow_foreign_endpoints: %v", w)
	}
}
