package config

import (
	"strings"
	"testing"
)

// dpop_key takes auto, tpm or software, and names the line of anything
// else.
func TestProfileDPoPKey(t *testing.T) {
	for _, v := range []string{"auto", "tpm", "software"} {
		c, err := Parse("c.yaml", []byte("profiles:\n  a:\n    issuer: https://x/realms/a\n    dpop_key: "+v+"\n"))
		if err != nil || c.Profiles["a"].DPoPKey != v {
			t.Fatalf("dpop_key: %s: %v", v, err)
		}
	}
	for _, bad := range []string{"hardware", "TPM", "yes"} {
		_, err := Parse("c.yaml", []byte("profiles:\n  a:\n    issuer: https://x/realms/a\n    dpop_key: "+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "c.yaml:4: profiles.a.dpop_key: unknown dpop_key") || !strings.Contains(err.Error(), `use "auto", "tpm" or "software"`) {
			t.Errorf("dpop_key: %s: got %v", bad, err)
		}
	}
}
