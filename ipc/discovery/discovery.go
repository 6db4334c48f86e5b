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
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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
//     Windows: the named pipe \\.\pipe\kc-agent-<user SID> (a pipe is
//     per machine, not per directory: the SID makes it per user, and the
//     pipe's DACL and both ends' SID checks make it private).
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
	// SID is the user's SID on Windows.
	SID string `json:"sid,omitempty"`
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
		if env.SID == "" {
			return nil
		}
		return []string{PipePrefix + "kc-agent-" + env.SID}
	case "darwin":
		var out []string
		// Computed with forward slashes whatever the host (path, not
		// filepath): the vectors are checked on every OS.
		if strings.HasPrefix(env.Home, "/") {
			out = append(out, path.Join(env.Home, "Library", "Caches", "kc-agent", "agent.sock"))
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
	if runtime.GOOS == "windows" {
		if env.Home == "" {
			env.Home = os.Getenv("USERPROFILE")
		}
		sid, err := currentSID()
		if err != nil {
			return env, err
		}
		env.SID = sid
	}
	if p := os.Getenv("KC_AGENT_SOCK"); p != "" {
		if runtime.GOOS == "windows" {
			if !IsPipe(p) {
				return env, fmt.Errorf("KC_AGENT_SOCK=%s: on Windows the agent listens on a named pipe; set it to %s<name>, or unset it", p, PipePrefix)
			}
			env.Sock = p
		} else {
			abs, err := filepath.Abs(p)
			if err != nil {
				return env, err
			}
			env.Sock = abs
		}
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

// UserSID is this process's user SID on Windows, "" elsewhere.
func UserSID() string {
	sid, _ := currentSID()
	return sid
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
	if dir := LockDirFor(env); dir != "" {
		return filepath.Join(dir, "agent.lock"), nil
	}
	return "", errors.New("no place for the agent's lock: set KC_AGENT_STATE_DIR")
}

// LockDirFor is the directory of the one-agent lock when
// KC_AGENT_STATE_DIR is not set: beside the default socket on Unix, and
// %LOCALAPPDATA%\kc-agent on Windows (a pipe has no directory).
func LockDirFor(env DiscoveryEnv) string {
	if env.GOOS == "windows" {
		switch {
		case env.LocalAppData != "":
			return env.LocalAppData + `\kc-agent`
		case env.Home != "":
			return env.Home + `\AppData\Local\kc-agent`
		}
		return ""
	}
	env.Sock = ""
	if c := CandidatesFor(env); len(c) > 0 {
		return filepath.Dir(c[0])
	}
	return ""
}

// PipePrefix starts every Windows named pipe path.
const PipePrefix = `\\.\pipe\`

// IsPipe tells whether path names a Windows named pipe.
func IsPipe(path string) bool {
	return len(path) > len(PipePrefix) && strings.EqualFold(path[:len(PipePrefix)], PipePrefix)
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
	if IsPipe(e.Path) {
		return fmt.Sprintf("do not use this agent; find the process that serves %s (another account may be impersonating kc-agent) and end it, or set KC_AGENT_SOCK to another pipe (%skc-agent-<name>)", e.Path, PipePrefix)
	}
	return fmt.Sprintf("do not use this agent; check who created %s (another user may be impersonating kc-agent), remove it, or set KC_AGENT_SOCK to a path in a private directory", e.Path)
}

// ErrUntrusted means a socket or its directory belongs to someone else.
var ErrUntrusted = errors.New("untrusted agent socket")
