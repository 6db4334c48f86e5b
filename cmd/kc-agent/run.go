package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/daemon"
	"github.com/kc-agent/kc-agent/installers"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

func newRunCmd(streams *IOStreams) *cobra.Command {
	var logFormat, logLevel, logFile string
	var autostarted bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the agent in the foreground (what the service manager runs)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			var logOut io.Writer = streams.Err
			if logFile != "" {
				if err := os.MkdirAll(filepath.Dir(logFile), 0o700); err != nil {
					return err
				}
				f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return fmt.Errorf("opening the log file: %w", err)
				}
				defer f.Close()
				logOut = f
				panicsTo(f)
			}
			log, err := newLogger(logOut, logFormat, logLevel)
			if err != nil {
				return err
			}
			if logFile != "" {
				// Started by a service manager or the Windows Run key,
				// stderr may go nowhere (NUL): a fatal error goes to the
				// log file too.
				defer func() {
					if err != nil {
						report(logOut, err)
					}
				}()
			}
			cfgPath, err := config.FilePath()
			if err != nil {
				return err
			}
			sock, err := discovery.SocketPath()
			if err != nil {
				return err
			}
			stateDir, err := config.StateDir()
			if err != nil {
				return err
			}
			lock, err := discovery.LockPath()
			if err != nil {
				return err
			}
			// An agent at any well-known place (started before
			// /run/user/<uid> existed, or with another KC_AGENT_SOCK) is
			// this user's agent already.
			if c := ipc.FindRunning(cmd.Context()); c != nil {
				who := "another kc-agent"
				if st, err := c.Status(cmd.Context()); err == nil {
					who = fmt.Sprintf("another kc-agent (pid %d)", st.PID)
				}
				return withHint(fmt.Errorf("%s already runs for this user on %s", who, c.Path),
					"one agent per user: use the running one (`kc-agent status`), or stop it first (`kc-agent stop`)")
			}
			err = daemon.Run(cmd.Context(), daemon.Options{
				Version: version, ConfigPath: cfgPath, SocketPath: sock, Log: log, StateDir: stateDir, LockPath: lock,
				Autostarted: autostarted, IdleExit: defaultIdleExit(autostarted),
			})
			if errors.Is(err, ipc.ErrAgentRunning) {
				return withHint(err, "use the running agent (`kc-agent status`), or stop it first (`kc-agent stop`)")
			}
			return err
		},
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().StringVar(&logFile, "log-file", "", "append the log to this file instead of stderr")
	// Set by the clients that start the agent themselves; not for people.
	cmd.Flags().BoolVar(&autostarted, "autostarted", false, "started by a client: end after agent.idle_exit without clients")
	cmd.Flags().MarkHidden("autostarted")
	return cmd
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level must be debug, info, warn or error, not %q", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr("--log-format must be text or json, not %q", format)
}

// defaultIdleExit is how long an agent waits without clients before it
// ends, unless the config's agent.idle_exit says otherwise: an agent a
// client started where no per-user service manager runs (a notebook
// server, a jump host) ends after config.DefaultIdleExit; an installed
// service, an agent started by hand, or one autostarted beside a user
// manager (which would run the service) never does by default.
func defaultIdleExit(autostarted bool) time.Duration {
	if !autostarted || installers.UserManagerRuns() {
		return 0
	}
	return config.DefaultIdleExit
}
