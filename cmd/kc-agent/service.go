package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/installers"
	"github.com/kc-agent/kc-agent/ipc"
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
	// The service sees the same paths as this shell: the socket above all,
	// since `kc-agent token` must find the service's agent.
	if sock, err := ipc.SocketPath(); err == nil {
		env["KC_AGENT_SOCK"] = sock
	}
	for _, k := range []string{"KC_AGENT_CONFIG", "KC_AGENT_STATE_DIR"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	return installers.Params{Binary: abs, Env: env}, nil
}

func newServiceCmd(streams *IOStreams) *cobra.Command {
	var binary string
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
	cmd.PersistentFlags().StringVar(&binary, "binary", "", "kc-agent binary the service runs (default: this one, made upgrade-stable)")
	manager := func() (installers.Manager, error) {
		p, err := serviceParams(binary)
		if err != nil {
			return nil, err
		}
		return installers.New(p)
	}
	wrap := func(err error) error {
		if errors.Is(err, installers.ErrNoUserManager) {
			return withHint(fmt.Errorf("%w; a per-user service can not be installed (`kc-agent service print` still shows the unit)", err), installers.NoUserManagerHint)
		}
		return err
	}
	simple := func(use, short, done string, f func(installers.Manager) error) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: usageArgs(cobra.NoArgs),
			RunE: func(c *cobra.Command, args []string) error {
				m, err := manager()
				if err != nil {
					return err
				}
				if err := f(m); err != nil {
					return wrap(err)
				}
				fmt.Fprintln(streams.Err, "kc-agent: "+done)
				return nil
			},
		}
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "print", Short: "Print the unit/plist/entry install would write", Args: usageArgs(cobra.NoArgs),
			RunE: func(c *cobra.Command, args []string) error {
				m, err := manager()
				if err != nil {
					return err
				}
				path, content, err := m.Definition()
				if err != nil {
					return err
				}
				fmt.Fprintf(streams.Err, "kc-agent: install would write %s:\n", path)
				fmt.Fprint(streams.Out, content)
				if len(content) > 0 && content[len(content)-1] != '\n' {
					fmt.Fprintln(streams.Out)
				}
				return nil
			},
		},
		&cobra.Command{
			Use: "install", Short: "Install (or update) and start the service", Args: usageArgs(cobra.NoArgs),
			RunE: func(c *cobra.Command, args []string) error {
				m, err := manager()
				if err != nil {
					return err
				}
				if err := m.Install(); err != nil {
					return wrap(err)
				}
				st, _ := m.Status()
				fmt.Fprintf(streams.Err, "kc-agent: service installed at %s and started; logs: %s\n", st.Path, st.Logs)
				if _, err := os.Stat("/run/systemd/system"); err == nil {
					fmt.Fprintln(streams.Err, "kc-agent: on a headless host, run `loginctl enable-linger $USER` so the agent runs without a login session")
				}
				return nil
			},
		},
		simple("uninstall", "Stop the service and remove what install wrote", "service stopped and removed", installers.Manager.Uninstall),
		simple("start", "Start the service", "service started", installers.Manager.Start),
		simple("stop", "Stop the service", "service stopped", installers.Manager.Stop),
		simple("restart", "Restart the service", "service restarted", installers.Manager.Restart),
		&cobra.Command{
			Use: "status", Short: "Say whether the service is installed, enabled and running", Args: usageArgs(cobra.NoArgs),
			RunE: func(c *cobra.Command, args []string) error {
				m, err := manager()
				if err != nil {
					return err
				}
				st, err := m.Status()
				if err != nil {
					return wrap(err)
				}
				yes := map[bool]string{true: "yes", false: "no"}
				fmt.Fprintf(streams.Out, "installed: %s (%s)\nenabled:   %s\nrunning:   %s\nlogs:      %s\n", yes[st.Installed], st.Path, yes[st.Enabled], yes[st.Running], st.Logs)
				if st.Detail != "" {
					fmt.Fprintf(streams.Out, "note:      %s\n", st.Detail)
				}
				return nil
			},
		},
	)
	return cmd
}
