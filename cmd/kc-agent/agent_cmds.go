package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/daemon"
	"github.com/kc-agent/kc-agent/ipc"
)

func addAgentCommands(root *cobra.Command, streams *IOStreams) {
	root.AddCommand(newRunCmd(streams), newTokenCmd(streams), newStatusCmd(streams), newEnvCmd(streams), newExecCmd(streams), newServiceCmd(streams))
}

func newRunCmd(streams *IOStreams) *cobra.Command {
	var logFormat, logLevel, logFile string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the agent in the foreground (what the service manager runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
			}
			log, err := newLogger(logOut, logFormat, logLevel)
			if err != nil {
				return err
			}
			cfgPath, err := config.FilePath()
			if err != nil {
				return err
			}
			sock, err := ipc.SocketPath()
			if err != nil {
				return err
			}
			stateDir, err := config.StateDir()
			if err != nil {
				return err
			}
			lock, err := ipc.LockPath()
			if err != nil {
				return err
			}
			// An agent at another well-known place (started before
			// /run/user/<uid> existed, say) is still this user's agent.
			if c, err := ipc.NewClient(); err == nil && c.Path != sock {
				hctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
				herr := c.Health(hctx)
				cancel()
				if herr == nil {
					return withHint(fmt.Errorf("another kc-agent already runs for this user on %s", c.Path),
						"one agent per user: use the running one (`kc-agent status`), or stop it first")
				}
			}
			err = daemon.Run(cmd.Context(), daemon.Options{
				Version: version, ConfigPath: cfgPath, SocketPath: sock, Log: log, StateDir: stateDir, LockPath: lock,
			})
			if errors.Is(err, ipc.ErrAgentRunning) {
				return withHint(err, "use the running agent (`kc-agent status`), or stop it first")
			}
			return err
		},
	}
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().StringVar(&logFile, "log-file", "", "append the log to this file instead of stderr")
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

type tokenOptions struct {
	profile      string
	scopes       []string
	minValid     time.Duration
	format       string
	noAutostart  bool
	forceRefresh bool
}

func newTokenCmd(streams *IOStreams) *cobra.Command {
	opts := &tokenOptions{}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a fresh access token (for scripts)",
		Long: `Print an access token and a newline, nothing else. Starts the agent in the
background when none runs (unless --no-autostart or KC_AGENT_NO_AUTOSTART=1).
Never opens a browser: when the login is gone it exits 4.

  kc-agent token --format header | curl -H @- https://api.example.com/

(A token in a command line, as in curl -H "...$(kc-agent token)", is visible
to every local user through ps; pipe it as above, or use kc-agent exec.)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return tokenRun(cmd.Context(), streams, opts) },
	}
	profileFlag(cmd, &opts.profile)
	cmd.Flags().StringArrayVar(&opts.scopes, "scope", nil, "ask for a token narrowed to these scopes (repeatable)")
	cmd.Flags().DurationVar(&opts.minValid, "min-valid", 0, "least remaining validity, e.g. 2m; a shorter-lived token is refreshed first")
	cmd.Flags().StringVar(&opts.format, "format", "raw", "output: raw, json, header or env")
	cmd.Flags().BoolVar(&opts.noAutostart, "no-autostart", false, "fail (exit 3) instead of starting an agent")
	cmd.Flags().BoolVar(&opts.forceRefresh, "force-refresh", false, "get a token issued now, not the cached one (after a server refused it); concurrent callers share one refresh")
	return cmd
}

func tokenRun(ctx context.Context, streams *IOStreams, opts *tokenOptions) error {
	switch opts.format {
	case "raw", "json", "header", "env":
	default:
		return usageErr("--format must be raw, json, header or env, not %q", opts.format)
	}
	if opts.minValid < 0 || opts.minValid > daemon.MaxMinValid {
		return usageErr("--min-valid must be between 0 and %s", daemon.MaxMinValid)
	}
	req := ipc.TokenRequest{Profile: config.ProfileName(opts.profile), Scopes: opts.scopes, MinValid: opts.minValid.Seconds(), ForceRefresh: opts.forceRefresh}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tok, err := fetchToken(ctx, streams.Err, req, opts.noAutostart)
	if err != nil {
		return err
	}
	switch opts.format {
	case "raw":
		fmt.Fprintln(streams.Out, tok.AccessToken)
	case "header":
		fmt.Fprintf(streams.Out, "Authorization: %s %s\n", tok.TokenType, tok.AccessToken)
	case "env":
		fmt.Fprintf(streams.Out, "export KC_AGENT_ACCESS_TOKEN='%s'\n", tok.AccessToken)
	case "json":
		enc := json.NewEncoder(streams.Out)
		return enc.Encode(struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			ExpiresAt   string `json:"expires_at"`
			ExpiresIn   int64  `json:"expires_in"`
		}{tok.AccessToken, tok.TokenType, tok.ExpiresAt.UTC().Format(time.RFC3339), tok.ExpiresIn})
	}
	return nil
}

func newStatusCmd(streams *IOStreams) *cobra.Command {
	var profile, format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the agent and each profile's state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usageErr("--format must be text or json, not %q", format)
			}
			c, err := ipc.NewClient()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(streams.Out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(st); err != nil {
					return err
				}
			} else {
				printStatus(streams.Out, st)
			}
			name := config.ProfileName(profile)
			for _, p := range st.Profiles {
				if p.Name == name && (p.State == ipc.StateLoginRequired || p.State == ipc.StateLoggedOut) {
					return &cliError{code: exitLoginRequired, err: fmt.Errorf("profile %q needs a login (%s)", name, p.State), hint: p.Hint}
				}
			}
			return nil
		},
	}
	profileFlag(cmd, &profile)
	cmd.Flags().StringVar(&format, "format", "text", "output: text or json")
	return cmd
}

func printStatus(w io.Writer, st *ipc.StatusResponse) {
	fmt.Fprintf(w, "agent:   kc-agent %s, pid %d, up %s\n", st.Version, st.PID, st.Uptime)
	fmt.Fprintf(w, "socket:  %s\n", st.Socket)
	fmt.Fprintf(w, "config:  %s\n", st.ConfigPath)
	if st.ConfigError != "" {
		fmt.Fprintf(w, "         INVALID (last good config still live): %s\n", st.ConfigError)
	}
	if st.Lock != "" {
		fmt.Fprintf(w, "lock:    %s (held by pid %d, uid %d)\n", st.Lock, st.PID, st.UID)
	}
	printProxy(w, st.Proxy)
	if len(st.Profiles) == 0 {
		fmt.Fprintln(w, "\nno profiles; run `kc-agent login <issuer-url>`")
		return
	}
	for _, p := range st.Profiles {
		fmt.Fprintf(w, "\nprofile %s: %s\n", p.Name, p.State)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		row := func(k, v string) {
			if v != "" {
				fmt.Fprintf(tw, "  %s\t%s\n", k, v)
			}
		}
		row("user", p.User)
		row("issuer", p.Issuer)
		row("client", p.ClientID)
		row("store", p.Store)
		row("token expires", fmtTime(p.AccessExpiresAt))
		row("last refresh", fmtTime(p.LastRefresh))
		row("next refresh", fmtTime(p.NextRefresh))
		row("refreshes", fmt.Sprint(p.Refreshes))
		if p.PersistPending {
			row("warning", "the latest offline token is not saved yet (retrying)")
		}
		row("last error", p.LastError)
		row("hint", p.Hint)
		tw.Flush()
	}
}

func printProxy(w io.Writer, ps ipc.ProxyStatus) {
	switch {
	case !ps.Configured:
		fmt.Fprintln(w, "proxy:   none (no routes configured)")
	case !ps.Running:
		fmt.Fprintf(w, "proxy:   NOT RUNNING: %s\n", ps.Error)
	default:
		fmt.Fprintf(w, "proxy:   http://%s, owned by this agent (`kc-agent env` for the variables)\n", ps.Addr)
		if ps.Error != "" {
			fmt.Fprintf(w, "         last change rejected (the old settings stay live): %s\n", ps.Error)
		}
	}
	for _, warn := range ps.Warnings {
		fmt.Fprintf(w, "         WARNING: %s\n", warn)
	}
	if len(ps.Refused) > 0 {
		keys := make([]string, 0, len(ps.Refused))
		for k := range ps.Refused {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %d", k, ps.Refused[k]))
		}
		fmt.Fprintf(w, "         refused: %s\n", strings.Join(parts, ", "))
	}
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	d := time.Until(*t).Round(time.Second)
	rel := "in " + d.String()
	switch {
	case d == 0:
		rel = "now"
	case d < 0:
		rel = (-d).String() + " ago"
	}
	return fmt.Sprintf("%s (%s)", t.Local().Format("2006-01-02 15:04:05"), rel)
}
