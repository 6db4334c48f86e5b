// Package discovery is where this user's agent listens and whether what
// listens there is this user's: the discovery order, the one-agent lock's
// place, and the owner and peer checks every client makes before it sends
// a request. It is the one implementation of them: ipc.Client and every
// command use it, and its vectors (testdata/discovery.json) are shared with
// the Python client.
package discovery

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// Where the agent's socket lives. The order is written down once, here and
// in the README ("Socket API"), and tested with the vectors in
// testdata/discovery.json that the Python client shares:
//
//  1. $KC_AGENT_SOCK, when set: that path and nothing else.
//  2. Linux and the BSDs: /run/user/<uid>/kc-agent/agent.sock when
//     /run/user/<uid> is a directory owned by the user; then
//     /tmp/kc-agent-<uid>/agent.sock.
//     macOS: $HOME/Library/Caches/kc-agent/agent.sock (when $HOME is set),
//     then /tmp/kc-agent-<uid>/agent.sock.
//     Windows: %LOCALAPPDATA%\kc-agent\agent.sock.
//
// The first candidate is where an agent is started; clients probe them all,
// in order, before autostarting one. Nothing depends on XDG_RUNTIME_DIR or
// TMPDIR: cron, sudo, SSH without pam_systemd and notebook kernels often
// lack them, and a caller that computed another path would start a second
// agent on the same stored login.

// DiscoveryEnv is everything discovery looks at, so that it can be tested
// (and shared with other clients) as plain data.
type DiscoveryEnv struct {
	GOOS         string `json:"goos"`
	UID          int    `json:"uid"`
	Sock         string `json:"KC_AGENT_SOCK,omitempty"`
	Home         string `json:"HOME,omitempty"`
	LocalAppData string `json:"LOCALAPPDATA,omitempty"`
	// RunUserDir is "owned" when /run/user/<uid> is a directory owned by
	// uid, "foreign" when it belongs to someone else, "" when missing.
	RunUserDir string `json:"run_user_dir,omitempty"`
}

// CandidatesFor lists the socket paths for env, in discovery order.
func CandidatesFor(env DiscoveryEnv) []string {
	if env.Sock != "" {
		return []string{env.Sock}
	}
	uidTmp := "/tmp/kc-agent-" + strconv.Itoa(env.UID) + "/agent.sock"
	switch env.GOOS {
	case "windows":
		if env.LocalAppData != "" {
			return []string{env.LocalAppData + `\kc-agent\agent.sock`}
		}
		if env.Home != "" {
			return []string{env.Home + `\AppData\Local\kc-agent\agent.sock`}
		}
		return nil
	case "darwin":
		var out []string
		if filepath.IsAbs(env.Home) {
			out = append(out, filepath.Join(env.Home, "Library", "Caches", "kc-agent", "agent.sock"))
		}
		return append(out, uidTmp)
	}
	var out []string
	if env.RunUserDir == "owned" {
		out = append(out, "/run/user/"+strconv.Itoa(env.UID)+"/kc-agent/agent.sock")
	}
	return append(out, uidTmp)
}

// CurrentEnv reads the discovery inputs of this process.
func CurrentEnv() (DiscoveryEnv, error) {
	env := DiscoveryEnv{GOOS: runtime.GOOS, UID: os.Getuid(), Home: os.Getenv("HOME"), LocalAppData: os.Getenv("LOCALAPPDATA")}
	if p := os.Getenv("KC_AGENT_SOCK"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return env, err
		}
		env.Sock = abs
	}
	if runtime.GOOS == "windows" && env.Home == "" {
		env.Home = os.Getenv("USERPROFILE")
	}
	if fi, err := os.Stat("/run/user/" + strconv.Itoa(env.UID)); err == nil && fi.IsDir() {
		if uid, ok := ownerUID(fi); ok && uid == env.UID {
			env.RunUserDir = "owned"
		} else {
			env.RunUserDir = "foreign"
		}
	}
	return env, nil
}

// Candidates lists this process's socket paths, in discovery order.
func Candidates() ([]string, error) {
	env, err := CurrentEnv()
	if err != nil {
		return nil, err
	}
	c := CandidatesFor(env)
	if len(c) == 0 {
		return nil, errors.New("no place for the agent's socket: set KC_AGENT_SOCK")
	}
	return c, nil
}

// SocketPath is where this user's agent listens: the first candidate.
func SocketPath() (string, error) {
	c, err := Candidates()
	if err != nil {
		return "", err
	}
	return c[0], nil
}

// LockPath is the one-agent lock. It names the user's installation, not the
// socket: $KC_AGENT_STATE_DIR/agent.lock when that override is set (an
// isolated installation with its own store), else agent.lock beside the
// default socket, ignoring KC_AGENT_SOCK, so a second agent started with
// another socket path still finds the first one's lock.
func LockPath() (string, error) {
	if d := os.Getenv("KC_AGENT_STATE_DIR"); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return "", err
		}
		return filepath.Join(abs, "agent.lock"), nil
	}
	env, err := CurrentEnv()
	if err != nil {
		return "", err
	}
	env.Sock = ""
	c := CandidatesFor(env)
	if len(c) == 0 {
		return "", errors.New("no place for the agent's lock: set KC_AGENT_STATE_DIR")
	}
	return filepath.Join(filepath.Dir(c[0]), "agent.lock"), nil
}

// PrepareSocketDir creates dir (0700) when missing and verifies it.
func PrepareSocketDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating socket directory: %w", err)
	}
	return CheckSocketDir(dir)
}

// UntrustedError says a socket, or its directory, is not this user's own:
// someone else may be impersonating the agent. Clients never send a request
// there and never autostart into it.
type UntrustedError struct {
	Path  string
	Owner int // -1 when unknown
	Msg   string
}

func (e *UntrustedError) Error() string { return e.Msg }
func (e *UntrustedError) Unwrap() error { return ErrUntrusted }

// Hint tells the user what to do about it.
func (e *UntrustedError) Hint() string {
	return fmt.Sprintf("do not use this agent; check who created %s (another user may be impersonating kc-agent), remove it, or set KC_AGENT_SOCK to a path in a private directory", e.Path)
}

// ErrUntrusted means a socket or its directory belongs to someone else.
var ErrUntrusted = errors.New("untrusted agent socket")

// CheckSocketDir verifies that dir belongs to this user and nobody else can
// enter it: a socket in a shared directory could be swapped by someone else.
func CheckSocketDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &UntrustedError{Path: dir, Owner: -1, Msg: fmt.Sprintf("socket directory %s is not a directory", dir)}
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	if uid, ok := ownerUID(fi); ok && uid != os.Getuid() {
		return &UntrustedError{Path: dir, Owner: uid, Msg: fmt.Sprintf("socket directory %s belongs to uid %d, not to you (uid %d)", dir, uid, os.Getuid())}
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return &UntrustedError{Path: dir, Owner: os.Getuid(), Msg: fmt.Sprintf("socket directory %s has mode %v; it must be 0700", dir, fi.Mode().Perm())}
	}
	return nil
}

// CheckPeer verifies that the process at the other end of the connected
// socket fd, dialed at path, runs as this user: file modes alone do not
// stop another user who created the directory first.
func CheckPeer(path string, fd uintptr) error {
	uid, err := PeerUID(fd)
	if err != nil {
		return &UntrustedError{Path: path, Owner: -1, Msg: fmt.Sprintf("can not tell who serves %s: %v", path, err)}
	}
	if uid != os.Getuid() {
		return &UntrustedError{Path: path, Owner: uid, Msg: fmt.Sprintf("the process serving %s runs as uid %d, not as you (uid %d)", path, uid, os.Getuid())}
	}
	return nil
}
