package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// FilePath is the config file: $KC_AGENT_CONFIG, else config.yaml in the
// user config directory ($XDG_CONFIG_HOME/kc-agent on Linux).
func FilePath() (string, error) {
	if p := os.Getenv("KC_AGENT_CONFIG"); p != "" {
		return filepath.Abs(p)
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no user config directory (set KC_AGENT_CONFIG): %w", err)
	}
	return filepath.Join(dir, "kc-agent", "config.yaml"), nil
}

// StateDir is where kc-agent keeps files that are not configuration: the
// opt-in token files, the daemon log, the local CA. $KC_AGENT_STATE_DIR
// overrides.
func StateDir() (string, error) {
	if p := os.Getenv("KC_AGENT_STATE_DIR"); p != "" {
		return filepath.Abs(p)
	}
	switch runtime.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd":
		if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
			return filepath.Join(d, "kc-agent"), nil
		}
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no home directory (set KC_AGENT_STATE_DIR): %w", err)
		}
		return filepath.Join(home, ".local", "state", "kc-agent"), nil
	case "windows":
		if d := os.Getenv("LOCALAPPDATA"); d != "" {
			return filepath.Join(d, "kc-agent"), nil
		}
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no state directory (set KC_AGENT_STATE_DIR): %w", err)
	}
	return filepath.Join(dir, "kc-agent", "state"), nil
}

// DefaultProfile is the profile a request or a command means when it names
// none (and neither --profile nor KC_AGENT_PROFILE does).
const DefaultProfile = "default"

// ProfileName is the profile to use when the command line names none.
func ProfileName(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv("KC_AGENT_PROFILE"); p != "" {
		return p
	}
	return DefaultProfile
}
