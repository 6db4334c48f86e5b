package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/ipc"
)

type tokenOptions struct {
	profile      string
	scopes       []string
	minValid     time.Duration
	format       string
	noAutostart  bool
	forceRefresh bool
	tokenType    string
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
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error { return tokenRun(cmd.Context(), streams, opts) },
	}
	profileFlag(cmd, &opts.profile)
	cmd.Flags().StringArrayVar(&opts.scopes, "scope", nil, "ask for a token narrowed to these scopes (repeatable)")
	cmd.Flags().DurationVar(&opts.minValid, "min-valid", 0, "least remaining validity, e.g. 2m; a shorter-lived token is refreshed first")
	cmd.Flags().StringVar(&opts.format, "format", "raw", "output: raw, json, header or env")
	cmd.Flags().BoolVar(&opts.noAutostart, "no-autostart", false, "fail (exit 3) instead of starting an agent")
	cmd.Flags().BoolVar(&opts.forceRefresh, "force-refresh", false, "get a token issued now, not the cached one (after a server refused it); concurrent callers share one refresh")
	tokenTypeFlag(cmd, &opts.tokenType, "type", ipc.TokenTypeAccess)
	return cmd
}

func tokenRun(ctx context.Context, streams *IOStreams, opts *tokenOptions) error {
	switch opts.format {
	case "raw", "json", "header", "env":
	default:
		return usageErr("--format must be raw, json, header or env, not %q", opts.format)
	}
	if opts.minValid < 0 || opts.minValid > ipc.MaxMinValid {
		return usageErr("--min-valid must be between 0 and %s", ipc.MaxMinValid)
	}
	if err := checkTokenType(opts.tokenType); err != nil {
		return err
	}
	req := ipc.TokenRequest{Profile: config.ProfileName(opts.profile), Scopes: opts.scopes, MinValid: opts.minValid.Seconds(), ForceRefresh: opts.forceRefresh, Type: opts.tokenType}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tok, err := fetchToken(ctx, streams.Err, req, opts.noAutostart)
	if err != nil {
		return err
	}
	if opts.tokenType == ipc.TokenTypeID {
		return printIDToken(streams.Out, opts.format, tok)
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
