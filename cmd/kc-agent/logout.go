package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/session"
	"github.com/kc-agent/kc-agent/ipc"
)

type logoutOptions struct {
	io      *IOStreams
	profile string
	all     bool
	yes     bool
}

func newLogoutCmd(streams *IOStreams) *cobra.Command {
	opts := &logoutOptions{io: streams}
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "End this login at Keycloak and forget the offline token",
		Long: `End this machine's offline session at Keycloak and delete the stored token.
With --all, end every offline session of the user for this client, on every
machine, through Keycloak's account API (asks for confirmation unless --yes);
this needs the user's manage-account role of the realm's account client, which
the realm's default roles give. Without it only this machine's session ends,
and you are told where to end the others. If Keycloak can not be reached,
the token is still deleted here and you are warned. While an agent runs, it
does the logout (it is the one writer of the stored tokens).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error { return logoutRun(cmd.Context(), opts) },
	}
	profileFlag(cmd, &opts.profile)
	cmd.Flags().BoolVar(&opts.all, "all", false, "end all of the user's offline sessions for this client, on every machine")
	cmd.Flags().BoolVarP(&opts.yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func logoutRun(ctx context.Context, opts *logoutOptions) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	name := config.ProfileName(opts.profile)
	prof, err := requireProfile(cfg, name)
	if err != nil {
		return err
	}
	if opts.all && !opts.yes {
		if err := opts.confirmAll(name, cfg.WithDefaults(prof).ClientID); err != nil {
			return err
		}
	}
	req := ipc.LogoutRequest{Profile: name, All: opts.all}
	var out *ipc.LogoutResponse
	if c := runningAgent(ctx); c != nil {
		out, err = c.Logout(ctx, req)
		if skew := (*ipc.SkewError)(nil); errors.As(c.Skew(ctx, err, version, http.MethodPost, ipc.PathLogout), &skew) {
			return withHint(fmt.Errorf("%w, so it can not log out", skew),
				"restart it (kc-agent service restart, or stop it and run the command again)")
		}
	} else {
		err = underLock("logout", func() error {
			lookup := func(string) (session.Profile, error) {
				return session.Profile{Config: cfg.WithDefaults(prof), Source: cfg.ProfileSource(name)}, nil
			}
			out, err = session.Local(lookup, opts.io.Err).Logout(ctx, req)
			return err
		})
	}
	if err != nil {
		return err
	}
	opts.report(out)
	return nil
}

// confirmAll asks before --all ends the user's sessions everywhere.
func (opts *logoutOptions) confirmAll(name, clientID string) error {
	if !opts.io.InTTY {
		return usageErr("--all ends the user's offline sessions on every machine; confirm with --yes when not at a terminal")
	}
	fmt.Fprintf(opts.io.Err, "This signs the user of profile %q out of every kc-agent on every machine (all offline sessions of client %s). Continue? [y/N] ", name, clientID)
	line, _ := bufio.NewReader(opts.io.In).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return errors.New("cancelled; nothing was changed")
	}
	return nil
}

func (opts *logoutOptions) report(out *ipc.LogoutResponse) {
	w := opts.io.Err
	switch {
	case !out.LoggedIn:
		fmt.Fprintf(w, "kc-agent: profile %q is not logged in; nothing to do\n", out.Profile)
	case out.Remote == ipc.RemoteEnded && out.All:
		fmt.Fprintf(w, "kc-agent: ended all offline sessions of %s for client %s, on every machine, and deleted the local token\n", out.User, out.ClientID)
	case out.Remote == ipc.RemoteEndedHere:
		fmt.Fprintf(w, "kc-agent: warning: revoked this machine's session of %s (profile %q) and deleted the local token, "+
			"but the user's sessions on other machines are NOT ended: %s\n", out.User, out.Profile, out.RemoteError)
	case out.Remote == ipc.RemoteEnded:
		fmt.Fprintf(w, "kc-agent: logged out %s (profile %q): session ended at the server, local token deleted\n", out.User, out.Profile)
	case out.Remote == ipc.RemoteAlreadyEnded:
		fmt.Fprintf(w, "kc-agent: the session had already ended at the server; local token deleted\n")
	default:
		fmt.Fprintf(w, "kc-agent: warning: could not end the session at the server (%s); the local token is deleted, and the server-side session ends on its own after the realm's offline idle time\n", out.RemoteError)
	}
}
