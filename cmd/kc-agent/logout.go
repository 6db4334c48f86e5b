package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
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
With --all, revoke every offline session of the user for this client, on every
machine (asks for confirmation unless --yes). If Keycloak can not be reached,
the token is still deleted here and you are warned.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error { return logoutRun(cmd.Context(), opts) },
	}
	profileFlag(cmd, &opts.profile)
	cmd.Flags().BoolVar(&opts.all, "all", false, "revoke all of the user's offline sessions for this client, on every machine")
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
	st, err := store.ForProfile(prof, opts.io.Err)
	if err != nil {
		return err
	}
	rec, err := st.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(opts.io.Err, "kc-agent: profile %q is not logged in; nothing to do\n", name)
		notifyAgent(ctx, name)
		return nil
	}
	if err != nil {
		return err
	}
	if opts.all && !opts.yes {
		if !opts.io.InTTY {
			return usageErr("--all ends the user's offline sessions on every machine; confirm with --yes when not at a terminal")
		}
		fmt.Fprintf(opts.io.Err, "This signs %s out of every kc-agent on every machine (all offline sessions of client %s). Continue? [y/N] ", rec.Username, rec.ClientID)
		line, _ := bufio.NewReader(opts.io.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return errors.New("cancelled; nothing was changed")
		}
	}

	remoteErr := endRemote(ctx, name, prof, rec, opts.all)
	release := lockStoreWrite("logout")
	err = st.Delete(ctx, name)
	if err == nil || errors.Is(err, store.ErrNotFound) {
		err = tokens.ForgetLoginKey(ctx, name, prof)
	}
	release()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("could not delete the stored token: %w", err)
	}
	notifyAgent(ctx, name)
	switch {
	case remoteErr == nil && opts.all:
		fmt.Fprintf(opts.io.Err, "kc-agent: revoked all offline sessions of %s for client %s and deleted the local token\n", rec.Username, rec.ClientID)
	case remoteErr == nil:
		fmt.Fprintf(opts.io.Err, "kc-agent: logged out %s (profile %q): session ended at the server, local token deleted\n", rec.Username, name)
	case errors.Is(remoteErr, oidc.ErrLogoutNeedsProof):
		fmt.Fprintf(opts.io.Err, "kc-agent: logged out %s (profile %q): %s\n", rec.Username, name, boundLogoutNote)
	case oidc.KindOf(remoteErr) == oidc.KindLoginRequired:
		fmt.Fprintf(opts.io.Err, "kc-agent: the session had already ended at the server; local token deleted\n")
	default:
		fmt.Fprintf(opts.io.Err, "kc-agent: warning: could not end the session at the server (%v); the local token is deleted, and the server-side session ends on its own after the realm's offline idle time\n", remoteErr)
	}
	return nil
}

// endRemote ends the stored login's session at its issuer, with the
// profile's options (and, for a bound login, proofs by its key).
func endRemote(ctx context.Context, name string, prof config.Profile, rec store.Record, all bool) error {
	prof.Issuer, prof.ClientID = rec.Issuer, rec.ClientID
	client, err := oidc.ForProfile(ctx, prof)
	if err != nil {
		return err
	}
	client = tokens.LogoutClient(ctx, name, prof, rec, client)
	if all {
		return client.Revoke(ctx, rec.RefreshToken)
	}
	return client.Logout(ctx, rec.RefreshToken)
}

// boundLogoutNote is what logout says when Keycloak could not end a
// DPoP-bound session (keycloak/keycloak#50306).
const boundLogoutNote = "the local token and its DPoP key are deleted; Keycloak could not end the session " +
	"(its logout endpoint ignores DPoP proofs: keycloak/keycloak#50306) and keeps it until it idles out " +
	"(the realm's offline idle time), but without the key no copy of the token can refresh it"
