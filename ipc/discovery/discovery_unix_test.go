//go:build unix

package discovery

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckSocketDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sock")
	if err := PrepareSocketDir(dir); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	err := CheckSocketDir(dir)
	if err == nil || !strings.Contains(err.Error(), "must be 0700") || !errors.Is(err, ErrUntrusted) {
		t.Fatalf("a 0755 socket directory was accepted: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	if err := CheckSocketDir(f); err == nil {
		t.Fatal("a file accepted as the socket directory")
	}
}
