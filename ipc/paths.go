package ipc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// SocketPath is $KC_AGENT_SOCK, else $XDG_RUNTIME_DIR/kc-agent/agent.sock,
// else agent.sock in a per-user private directory.
func SocketPath() (string, error) {
	if p := os.Getenv("KC_AGENT_SOCK"); p != "" {
		return filepath.Abs(p)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "kc-agent", "agent.sock"), nil
	}
	switch runtime.GOOS {
	case "darwin":
		// $TMPDIR on macOS is already per user (/var/folders/...).
		if d := os.Getenv("TMPDIR"); d != "" {
			return filepath.Join(d, "kc-agent", "agent.sock"), nil
		}
	case "windows":
		if d := os.Getenv("LOCALAPPDATA"); d != "" {
			return filepath.Join(d, "kc-agent", "agent.sock"), nil
		}
	}
	return filepath.Join(os.TempDir(), "kc-agent-"+strconv.Itoa(os.Getuid()), "agent.sock"), nil
}

// PrepareSocketDir creates dir (0700) when missing and verifies it.
func PrepareSocketDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating socket directory: %w", err)
	}
	return CheckSocketDir(dir)
}

// CheckSocketDir verifies that dir belongs to this user and nobody else can
// enter it: a socket in a shared directory could be swapped by someone else.
func CheckSocketDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	if uid, ok := ownerUID(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("socket directory %s belongs to uid %d, not to you (uid %d)", dir, uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("socket directory %s has mode %v; it must be 0700", dir, fi.Mode().Perm())
	}
	return nil
}

var errNotSocket = errors.New("not a socket")
