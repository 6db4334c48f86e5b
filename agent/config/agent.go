package config

import (
	"strings"
	"time"
)

// Agent holds settings of the agent process itself.
type Agent struct {
	// IdleExit is how long an autostarted agent waits without clients (no
	// socket request, no proxy request, no pending sign-in) before it
	// exits; the next client starts it again from the stored login. A Go
	// duration ("30m", "2h"); "0" means never. An installed service and a
	// `kc-agent run` by hand never exit when idle.
	IdleExit string `yaml:"idle_exit,omitempty"`
}

// DefaultIdleExit is the idle time of an autostarted agent where nothing
// else manages it (no per-user service manager): a shared host's notebook
// servers come and go, and their agents should not outlive them.
const DefaultIdleExit = 30 * time.Minute

// MinIdleExit keeps a typo ("30s" for "30m") from making every call start
// an agent.
const MinIdleExit = time.Second

// ParseIdleExit reads an idle_exit value: 0 (never) or a duration of at
// least MinIdleExit.
func ParseIdleExit(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, true
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinIdleExit {
		return 0, false
	}
	return d, true
}

// IdleExit is the configured idle time, and whether one is configured.
func (c *Config) IdleExit() (time.Duration, bool) {
	if c == nil || c.Agent.IdleExit == "" {
		return 0, false
	}
	return ParseIdleExit(c.Agent.IdleExit)
}

func (c *Config) validateAgent() error {
	if c.Agent.IdleExit == "" {
		return nil
	}
	if _, ok := ParseIdleExit(c.Agent.IdleExit); !ok {
		return &Error{File: c.path, Line: c.line("agent", "idle_exit"), Field: "agent.idle_exit",
			Msg: "must be 0 (never) or a duration of at least 1s, e.g. 30m or 2h"}
	}
	return nil
}

// mergeAgent lays the user's agent settings over the system file's.
func mergeAgent(sys, user Agent) Agent {
	if user.IdleExit != "" {
		sys.IdleExit = user.IdleExit
	}
	return sys
}
