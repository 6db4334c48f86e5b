package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/installers"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// serviceParams describes the service for this user: a stable binary path
// and the agent's environment.
func serviceParams(binary string) (installers.Params, error) {
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return installers.Params{}, err
		}
		if resolved, err := filepath.EvalSymlinks(exe); err == nil {
			exe = resolved
		}
		binary = installers.StableBinary(exe)
	}
	abs, err := filepath.Abs(binary)
	if err != nil {
		return installers.Params{}, err
	}
	env := map[string]string{}
	// The service sees the overrides this shell has. Without them it
	// listens where every client looks first (ipc discovery), so nothing
	// needs pinning.
	for _, k := range []string{"KC_AGENT_SOCK", "KC_AGENT_CONFIG", "KC_AGENT_STATE_DIR"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	return installers.Params{Binary: abs, Env: env, AgentPID: runningAgentPID, Ready: agentReady}, nil
}

// runningAgentPID is the process ID of this user's agent: the one a
// verified client reaches (its status names its pid), else the holder of
// the one-agent lock while it holds it (an agent still starting). 0 when
// none runs. Never an image name: that would match this command too.
func runningAgentPID() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if c := ipc.FindRunning(ctx); c != nil {
		if st, err := c.Status(ctx); err == nil && st.PID > 0 {
			return st.PID, nil
		}
	}
	lock, err := discovery.LockPath()
	if err != nil {
		return 0, err
	}
	if h := ipc.ReadLockHolder(lock); h.Role != "agent" || h.PID <= 0 {
		return 0, nil
	}
	// The file names the last holder; only a held lock means it runs.
	l, err := ipc.TryLock(lock, "service", "")
	if err == nil {
		l.Release()
		return 0, nil
	}
	var le *ipc.LockedError
	if errors.As(err, &le) && le.Holder.Role == "agent" {
		return le.Holder.PID, nil
	}
	return 0, nil
}

// agentReady tells whether this user's agent answers.
func agentReady() error {
	c, err := ipc.NewClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Health(ctx)
}

func newServiceCmd(streams *IOStreams) *cobra.Command {
	sc := &serviceCmds{streams: streams}
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Install the agent as a per-user service that starts at login",
		Long: `Manage the per-user service: a systemd user unit on Linux, a LaunchAgent on
macOS, a per-user Run key entry on Windows. No root needed.

  kc-agent service print       # review what install would write
  kc-agent service install     # write it, enable it, (re)start it; re-run to update
  kc-agent service status
  kc-agent service uninstall   # stop and remove everything install wrote`,
	}
	cmd.PersistentFlags().StringVar(&sc.binary, "binary", "", "kc-agent binary the service runs (default: this one, made upgrade-stable)")
	cmd.AddCommand(
		sc.sub("print", "Print the unit/plist/entry install would write", sc.print),
		sc.sub("install", "Install (or update) and start the service", sc.install),
		sc.sub("uninstall", "Stop the service and remove what install wrote", sc.done("service stopped and removed", installers.Manager.Uninstall)),
		sc.sub("start", "Start the service", sc.done("service started", installers.Manager.Start)),
		sc.sub("stop", "Stop the service", sc.done("service stopped", installers.Manager.Stop)),
		sc.sub("restart", "Restart the service", sc.done("service restarted", installers.Manager.Restart)),
		sc.sub("status", "Say whether the service is installed, enabled and running", sc.status),
	)
	return cmd
}

// serviceCmds are the service subcommands; each runs against the
// platform's installers.Manager.
type serviceCmds struct {
	streams *IOStreams
	binary  string
	params  installers.Params // what the running subcommand manages
}

func (sc *serviceCmds) sub(use, short string, run func(installers.Manager) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: usageArgs(cobra.NoArgs),
		RunE: func(c *cobra.Command, args []string) error {
			p, err := serviceParams(sc.binary)
			if err != nil {
				return err
			}
			sc.params = p
			m, err := installers.New(p)
			if err != nil {
				return err
			}
			err = run(m)
			if errors.Is(err, installers.ErrNoUserManager) {
				return withHint(fmt.Errorf("%w; a per-user service can not be installed (`kc-agent service print` still shows the unit)", err), installers.NoUserManagerHint)
			}
			return err
		},
	}
}

func (sc *serviceCmds) done(msg string, f func(installers.Manager) error) func(installers.Manager) error {
	return func(m installers.Manager) error {
		if err := f(m); err != nil {
			return err
		}
		fmt.Fprintln(sc.streams.Err, "kc-agent: "+msg)
		return nil
	}
}

func (sc *serviceCmds) print(m installers.Manager) error {
	path, content, err := m.Definition()
	if err != nil {
		return err
	}
	fmt.Fprintf(sc.streams.Err, "kc-agent: install would write %s:\n", path)
	fmt.Fprint(sc.streams.Out, content)
	if len(content) > 0 && content[len(content)-1] != '\n' {
		fmt.Fprintln(sc.streams.Out)
	}
	return nil
}

func (sc *serviceCmds) install(m installers.Manager) error {
	if err := m.Install(); err != nil {
		return err
	}
	if dir, kind := installers.PythonEnv(sc.params.Binary); dir != "" {
		fmt.Fprintf(sc.streams.Err, "kc-agent: warning: the service runs %s, inside the %s %s: removing or recreating that environment breaks the service\n", sc.params.Binary, kind, dir)
		fmt.Fprintln(sc.streams.Err, "kc-agent: hint: for a service, install kc-agent from a system package (or installers/install.sh) and run `kc-agent service install` from there; from a wheel, the client starts the agent itself when needed")
	}
	st, _ := m.Status()
	fmt.Fprintf(sc.streams.Err, "kc-agent: service installed at %s and started; logs: %s\n", st.Path, st.Logs)
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		fmt.Fprintln(sc.streams.Err, "kc-agent: on a headless host, run `loginctl enable-linger $USER` so the agent runs without a login session")
	}
	return nil
}

func (sc *serviceCmds) status(m installers.Manager) error {
	st, err := m.Status()
	if err != nil {
		return err
	}
	yes := map[bool]string{true: "yes", false: "no"}
	fmt.Fprintf(sc.streams.Out, "installed: %s (%s)\nenabled:   %s\nrunning:   %s\nlogs:      %s\n", yes[st.Installed], st.Path, yes[st.Enabled], yes[st.Running], st.Logs)
	if st.Detail != "" {
		fmt.Fprintf(sc.streams.Out, "note:      %s\n", st.Detail)
	}
	return nil
}
