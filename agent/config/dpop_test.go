package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// dpop takes off, refresh, on or auto (YAML 1.2: all strings, not
// booleans), unset is auto, and anything else names the line and the four.
func TestProfileDPoP(t *testing.T) {
	for _, tc := range []struct {
		value string
		mode  string
	}{{"", "auto"}, {"off", "off"}, {"refresh", "refresh"}, {"on", "on"}, {`"on"`, "on"}, {"auto", "auto"}} {
		doc := "profiles:\n  a:\n    issuer: https://x/realms/a\n"
		if tc.value != "" {
			doc += "    dpop: " + tc.value + "\n"
		}
		c, err := Parse("c.yaml", []byte(doc))
		if err != nil {
			t.Fatalf("dpop: %s: %v", tc.value, err)
		}
		if got := c.Profiles["a"].DPoPMode(); got != tc.mode {
			t.Errorf("dpop: %s: mode %q, want %q", tc.value, got, tc.mode)
		}
	}
	for _, bad := range []string{"true", "yes", "bearer", "ON"} {
		_, err := Parse("c.yaml", []byte("profiles:\n  a:\n    issuer: https://x/realms/a\n    dpop: "+bad+"\n"))
		if err == nil || !strings.Contains(err.Error(), "c.yaml:4: profiles.a.dpop: unknown dpop mode") || !strings.Contains(err.Error(), `use "off", "refresh", "on" or "auto" (the default)`) {
			t.Errorf("dpop: %s: got %v", bad, err)
		}
	}
}

// SetProfile writes the mode into the file, and it reads back.
func TestSetProfileKeepsDPoP(t *testing.T) {
	path := filepath.Join(testenv.TempDir(t), "c.yaml")
	c, err := Parse(path, []byte("# mine\nprofiles:\n  a:\n    issuer: https://x/realms/a\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetProfile("b", Profile{Issuer: "https://x/realms/b", DPoP: DPoPOn}); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil || back.Profiles["b"].DPoPMode() != DPoPOn {
		out, _ := os.ReadFile(path)
		t.Fatalf("dpop: on did not survive SetProfile: %v\n%s", err, out)
	}
}
