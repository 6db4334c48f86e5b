//go:build !windows

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// checkWrittenPrivate: what login writes is 0600.
func checkWrittenPrivate(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v err %v", fi.Mode().Perm(), err)
	}
}

func TestLoadRefusesConfigOthersCanWrite(t *testing.T) {
	dir := filepath.Join(testenv.TempDir(t), "kc")
	os.MkdirAll(dir, 0o700)
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte("profiles:\n  default:\n    issuer: https://x/realms/a\n"), 0o600)
	if _, err := Load(path); err != nil {
		t.Fatalf("a private config was refused: %v", err)
	}
	os.Chmod(path, 0o666)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "other users could rewrite it") {
		t.Fatalf("a world-writable config was accepted: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := Load(path); err != nil {
		t.Fatalf("a 0644 config (readable, not writable, by others) was refused: %v", err)
	}
	os.Chmod(dir, 0o777)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "config directory") {
		t.Fatalf("a config in a world-writable directory was accepted: %v", err)
	}
	os.Chmod(dir, 0o700)
	if os.Getuid() == 0 {
		os.Chown(path, 65534, 65534)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Fatalf("a config owned by another user was accepted: %v", err)
		}
	}
}

// A CA file another user can write could add a CA that reads route tokens.
func TestCAFileOthersCanWriteIsRefused(t *testing.T) {
	dir := filepath.Join(testenv.TempDir(t), "ca")
	os.Mkdir(dir, 0o755)
	pem := filepath.Join(dir, "ca.pem")
	os.WriteFile(pem, []byte("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"), 0o644)
	cfg := "proxy:\n  ca_file: " + pem + "\n"
	if _, err := Parse("c.yaml", []byte(cfg)); err != nil {
		t.Fatalf("a private CA file was refused: %v", err)
	}
	os.Chmod(pem, 0o666)
	if _, err := Parse("c.yaml", []byte(cfg)); err == nil || !strings.Contains(err.Error(), "other users could change it") {
		t.Fatalf("a world-writable CA file was accepted: %v", err)
	}
	os.Chmod(pem, 0o644)
	if os.Getuid() == 0 {
		os.Chown(pem, 65534, 65534)
		if _, err := Parse("c.yaml", []byte(cfg)); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Fatalf("a CA file of another user was accepted: %v", err)
		}
	}
}
