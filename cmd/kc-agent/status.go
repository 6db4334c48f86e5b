package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/ipc"
)

func newStatusCmd(streams *IOStreams) *cobra.Command {
	var profile, format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the agent and each profile's state",
		Args:  usageArgs(cobra.NoArgs),
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
	if st.Autostarted && st.IdleExit != "" {
		fmt.Fprintf(w, "         autostarted: ends after %s without clients; the next client starts it again\n", st.IdleExit)
	}
	fmt.Fprintf(w, "socket:  %s\n", st.Socket)
	fmt.Fprintf(w, "config:  %s\n", st.ConfigPath)
	if st.SystemConfig != "" {
		fmt.Fprintf(w, "         under the system-wide %s\n", st.SystemConfig)
	}
	if st.ConfigError != "" {
		fmt.Fprintf(w, "         INVALID (last good config still live): %s\n", st.ConfigError)
	}
	if st.SystemConfigError != "" {
		fmt.Fprintf(w, "         system-wide config IGNORED (your own profiles keep serving): %s\n", st.SystemConfigError)
	}
	for _, r := range st.LeftOutRoutes {
		fmt.Fprintf(w, "         system route left out: %s\n", r)
	}
	if st.Lock != "" {
		who := fmt.Sprintf("uid %d", st.UID)
		if st.SID != "" {
			who = st.SID
		}
		fmt.Fprintf(w, "lock:    %s (held by pid %d, %s)\n", st.Lock, st.PID, who)
	}
	printProxy(w, st.Proxy)
	printSignIns(w, st.SignIns)
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
		row("dpop", dpopLine(p))
		row("dpop note", p.DPoPNote)
		if st.SystemConfig != "" {
			row("from", p.Source)
		}
		row("token expires", fmtTime(p.AccessExpiresAt))
		row("last refresh", fmtTime(p.LastRefresh))
		row("next refresh", fmtTime(p.NextRefresh))
		row("refreshes", fmt.Sprint(p.Refreshes))
		if p.PersistPending {
			row("warning", "the latest offline token is not saved yet (retrying)")
		}
		row("last error", p.LastError)
		row("hint", p.Hint)
		for _, warn := range p.Warnings {
			row("WARNING", warn)
		}
		for _, f := range p.ForeignListeners {
			row("REFUSED", foreignLine(f, "the offline token"))
		}
		tw.Flush()
	}
}

// dpopLine says which DPoP mode is configured and which the stored
// login is in.
func dpopLine(p ipc.ProfileStatus) string {
	if p.DPoPMode == "" {
		return ""
	}
	line := p.DPoPMode
	if p.DPoPMode == config.DPoPAuto {
		line += " (the default)"
	}
	switch p.DPoPLogin {
	case config.DPoPOff:
		line += "; the login is not bound to a key"
	case config.DPoPRefresh:
		line += "; the login is bound to a key (refresh: Bearer access tokens)"
	case config.DPoPOn:
		line += "; the login is bound to a key (on: DPoP access tokens)"
	}
	if p.DPoPKey != "" {
		line += "; key: " + p.DPoPKey
	}
	return line
}

func printProxy(w io.Writer, ps ipc.ProxyStatus) {
	switch {
	case !ps.Configured:
		fmt.Fprintln(w, "proxy:   none (no routes configured)")
	case ps.Retrying:
		fmt.Fprintf(w, "proxy:   WAITING for its address (retrying in the background): %s\n", ps.Error)
		fmt.Fprintf(w, "         hint: %s\n", ps.Hint)
	case !ps.Running:
		fmt.Fprintf(w, "proxy:   NOT RUNNING: %s\n", ps.Error)
	default:
		fmt.Fprintf(w, "proxy:   http://%s, owned by this agent (`kc-agent env` for the variables)\n", ps.Addr)
		if ps.Error != "" {
			fmt.Fprintf(w, "         last change rejected (the old settings stay live): %s\n", ps.Error)
		}
	}
	for _, r := range ps.Routes {
		if r.Source != "" {
			fmt.Fprintf(w, "         route %s -> %s (profile %s, from %s)\n", r.Name, r.Upstream, r.Profile, r.Source)
		}
	}
	for i, warn := range ps.Warnings {
		fmt.Fprintf(w, "         WARNING: %s\n", warn)
		if i < len(ps.WarningHints) && ps.WarningHints[i] != "" {
			fmt.Fprintf(w, "         hint: %s\n", ps.WarningHints[i])
		}
	}
	for _, f := range ps.ForeignListeners {
		fmt.Fprintf(w, "         REFUSED: %s\n", foreignLine(f, "a token"))
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

// foreignLine tells of tokens kept back from a port another user held.
func foreignLine(f ipc.ForeignListener, what string) string {
	last := f.Last
	return fmt.Sprintf("%s not sent in the clear to %s: %s listens there, not you (%d time(s), last %s)", what, f.Addr, f.Owner, f.Count, fmtTime(&last))
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

// printSignIns shows the sign-ins the agent runs: a user who lost the
// notebook cell's output can finish from here.
func printSignIns(w io.Writer, sis []ipc.LoginStatus) {
	for _, si := range sis {
		if si.State != ipc.LoginPending {
			continue
		}
		left := time.Until(si.ExpiresAt).Round(time.Second)
		fmt.Fprintf(w, "\nsign-in %s: pending (%s flow, %s left)\n", si.Profile, si.Flow, max(left, 0))
		if si.Flow == ipc.FlowDevice {
			url := si.VerificationURIComplete
			if url == "" {
				url = si.VerificationURI
			}
			fmt.Fprintf(w, "  open     %s\n  code     %s\n", url, si.UserCode)
		} else {
			fmt.Fprintf(w, "  open     %s\n", si.AuthorizationURL)
		}
	}
}
