package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/agentenv"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// connectAgent finds this user's verified agent (ipc.NewClient: discovery
// and the owner and peer checks) and, when none answers and autostart is
// allowed, starts one at the first discovery candidate. Every command that
// talks to the agent (token, env, exec, and the credential helpers) comes
// through here.
func connectAgent(ctx context.Context, stderr io.Writer, noAutostart bool) (*ipc.Client, error) {
	c, err := ipc.NewClient()
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	herr := c.Health(hctx)
	cancel()
	switch {
	case herr == nil:
		return c, nil
	case !errors.Is(herr, ipc.ErrUnreachable) || !autostartAllowed(noAutostart):
		return nil, herr
	}
	if err := startAgent(ctx, c, stderr); err != nil {
		return nil, err
	}
	return c, nil
}

// fetchToken asks the verified agent for a token, autostarting it when
// allowed.
func fetchToken(ctx context.Context, stderr io.Writer, req ipc.TokenRequest, noAutostart bool) (*ipc.TokenResponse, error) {
	c, err := ipc.NewClient()
	if err != nil {
		return nil, err
	}
	tok, err := c.Token(ctx, req)
	if errors.Is(err, ipc.ErrUnreachable) && autostartAllowed(noAutostart) {
		if serr := startAgent(ctx, c, stderr); serr != nil {
			return nil, serr
		}
		tok, err = c.Token(ctx, req)
	}
	return tok, err
}

func autostartAllowed(flag bool) bool {
	if flag {
		return false
	}
	switch strings.ToLower(os.Getenv("KC_AGENT_NO_AUTOSTART")) {
	case "1", "true", "yes":
		return false
	}
	return true
}

// startAgent starts `kc-agent run` in the background, detached from this
// process (like gpg-agent), logging to the state directory, and waits for
// its socket. The new agent takes the one-agent lock; if another process
// won the race, that one answers instead.
func startAgent(ctx context.Context, c *ipc.Client, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	state, err := config.StateDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}
	logPath := filepath.Join(state, "agent.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	// --autostarted: nobody manages this agent, so it ends when idle
	// (agent.idle_exit) and the next client starts it again.
	cmd := exec.Command(exe, "run", "--autostarted")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = "/"
	// The agent listens where this client looked first, whatever the
	// environment it inherits says; of the rest it keeps only what it
	// needs, never the spawner's secrets (agentenv).
	cmd.Env = append(agentenv.Filter(os.Environ(), runtime.GOOS), "KC_AGENT_SOCK="+c.Path)
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		hctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := c.Health(hctx)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, discovery.ErrUntrusted) {
			return err
		}
		select {
		case werr := <-exited:
			// Lost a race with another autostart? Then its agent answers.
			if c.Health(ctx) == nil {
				return nil
			}
			return &cliError{code: exitUnreachable, err: fmt.Errorf("the agent exited at once (%v)", werr),
				hint: "see " + logPath}
		case <-time.After(25 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return &cliError{code: exitUnreachable, err: errors.New("started an agent, but its socket did not answer within 5s"), hint: "see " + logPath}
}
