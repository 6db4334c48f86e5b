package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
)

// doctor on a bound login's key: a stored key that is not usable (here
// corrupt) fails with the login hint; one that can't be read right now
// (here a directory in its place) is a warning that says why.
func TestDoctorLoginBindingKeyErrors(t *testing.T) {
	dir := t.TempDir()
	old := tokens.KeysFor
	tokens.KeysFor = func(config.Profile) (store.KeyStore, error) { return &store.FileKeys{Dir: dir}, nil }
	t.Cleanup(func() { tokens.KeysFor = old })
	rec := store.Record{KeyThumbprint: "jkt", DPoP: config.DPoPRefresh}
	os.WriteFile(filepath.Join(dir, "corrupt.dpop-key"), []byte("{"), 0o600)
	if c := loginBindingCheck(context.Background(), "corrupt", config.Profile{}, rec); c.status != "FAIL" || !strings.Contains(c.detail, "not usable") || !strings.Contains(c.hint, "kc-agent login") {
		t.Errorf("a corrupt key: %+v", c)
	}
	os.Mkdir(filepath.Join(dir, "unreadable.dpop-key"), 0o700)
	if c := loginBindingCheck(context.Background(), "unreadable", config.Profile{}, rec); c.status != "warn" || !strings.Contains(c.detail, "could not read the key") {
		t.Errorf("a key that can't be read: %+v", c)
	}
}
