package testenv

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// PrivateSocket listens on a Unix socket in a fresh 0700 directory under
// the system's temporary directory (short enough for sun_path, unlike
// t.TempDir), the way the agent's socket lives, and cleans both up. Tests
// serve fake agents on it.
func PrivateSocket(t testing.TB) (net.Listener, string) {
	t.Helper()
	base, err := os.MkdirTemp("", "kcs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	path := filepath.Join(base, "d", "agent.sock")
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, path
}
