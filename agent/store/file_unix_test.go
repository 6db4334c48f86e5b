//go:build unix

package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/agent/store"
)

// checkFileStoreProtection: on Unix the file is 0600 in a 0700 directory,
// and a file others can read is refused.
func checkFileStoreProtection(t *testing.T, f *store.File) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(f.Dir, "p.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600 (%v)", fi.Mode().Perm(), err)
	}
	di, _ := os.Stat(f.Dir)
	if di.Mode().Perm() != 0o700 {
		t.Fatalf("token dir mode %v, want 0700", di.Mode().Perm())
	}
	os.Chmod(filepath.Join(f.Dir, "p.json"), 0o644)
	if _, err := f.Get(context.Background(), "p"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token file accepted: %v", err)
	}
}

// checkKeyFileProtection: the key file is 0600, and one others can read
// is refused (the key may have been copied: log in again with a new one).
func checkKeyFileProtection(t *testing.T, ks *store.FileKeys, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600 (%v)", fi.Mode().Perm(), err)
	}
	os.Chmod(path, 0o640)
	if _, err := ks.Get(context.Background(), "p"); !errors.Is(err, store.ErrKeyUnusable) || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("group-readable key file accepted: %v", err)
	}
}

// CheckWritable: a directory the user can write passes and keeps no trace;
// one the user can't write fails with the path named.
func TestFileCheckWritable(t *testing.T) {
	f := &store.File{Dir: filepath.Join(t.TempDir(), "tokens")}
	if err := f.CheckWritable(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(f.Dir); len(ents) != 0 {
		t.Errorf("the check left %d files behind", len(ents))
	}
	if di, _ := os.Stat(f.Dir); di.Mode().Perm() != 0o700 {
		t.Errorf("token dir mode %v", di.Mode().Perm())
	}
	// A state directory that can't hold one (a file in its place: even
	// root can't write there).
	blocked := filepath.Join(t.TempDir(), "state")
	os.WriteFile(blocked, nil, 0o600)
	f = &store.File{Dir: filepath.Join(blocked, "tokens")}
	if err := f.CheckWritable(context.Background()); err == nil || !strings.Contains(err.Error(), blocked) {
		t.Fatalf("an unusable state dir: %v", err)
	}
}
