package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

func TestWriteReplacesWithMode(t *testing.T) {
	dir := testenv.TempDir(t)
	path := filepath.Join(dir, "f")
	if err := Write(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "two" {
		t.Fatalf("got %q", data)
	}
	checkMode(t, path, 0o644)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := Write(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil {
		t.Fatal("a write into a missing directory succeeded")
	}
	if err := Write(path, []byte("three"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path, 0o600)
}
