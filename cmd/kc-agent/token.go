package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	// --format dpop: the request the proof is for (token_dpop.go).
	url, method, nonce string
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
to every local user through ps; pipe it as above, or use kc-agent exec.)

A DPoP-bound token (a login made with dpop: on) is printed only with a proof
for one request, as the two header lines an API wants:

  kc-agent token --format dpop --url https://api.example.com/x --method POST |
      curl -H @- -X POST https://api.example.com/x

When the API answers 401 with a DPoP-Nonce header, ask again with --nonce.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error { return tokenRun(cmd.Context(), streams, opts) },
	}
	profileFlag(cmd, &opts.profile)
	cmd.Flags().StringArrayVar(&opts.scopes, "scope", nil, "ask for a token narrowed to these scopes (repeatable)")
	cmd.Flags().DurationVar(&opts.minValid, "min-valid", 0, "least remaining validity, e.g. 2m; a shorter-lived token is refreshed first")
	cmd.Flags().StringVar(&opts.format, "format", "raw", "output: raw, json, header, env, or dpop (header lines with a DPoP proof for --url)")
	cmd.Flags().StringVar(&opts.url, "url", "", "with --format dpop: the URL of the request the proof is for")
	cmd.Flags().StringVar(&opts.method, "method", "", "with --format dpop: the request's method (default GET)")
	cmd.Flags().StringVar(&opts.nonce, "nonce", "", "with --format dpop: the API's DPoP-Nonce, after it answered use_dpop_nonce")
	cmd.Flags().BoolVar(&opts.noAutostart, "no-autostart", false, "fail (exit 3) instead of starting an agent")
	cmd.Flags().BoolVar(&opts.forceRefresh, "force-refresh", false, "get a token issued now, not the cached one (after a server refused it); concurrent callers share one refresh")
	tokenTypeFlag(cmd, &opts.tokenType, "type", ipc.TokenTypeAccess)
	return cmd
}

func tokenRun(ctx context.Context, streams *IOStreams, opts *tokenOptions) error {
	switch opts.format {
	case "raw", "json", "header", "env", "dpop":
	default:
		return usageErr("--format must be raw, json, header, env or dpop, not %q", opts.format)
	}
	if opts.minValid < 0 || opts.minValid > ipc.MaxMinValid {
		return usageErr("--min-valid must be between 0 and %s", ipc.MaxMinValid)
	}
	if err := checkTokenType(opts.tokenType); err != nil {
		return err
	}
	if err := checkDPoPFlags(opts); err != nil {
		return err
	}
	profile := config.ProfileName(opts.profile)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if opts.format == "dpop" {
		p, err := fetchProof(ctx, streams.Err, ipc.ProofRequest{Profile: profile, Scopes: opts.scopes, MinValid: opts.minValid.Seconds(),
			ForceRefresh: opts.forceRefresh, Method: opts.method, URL: opts.url, Nonce: opts.nonce}, opts.noAutostart)
		if err != nil {
			return err
		}
		printDPoP(streams.Out, p)
		return nil
	}
	req := ipc.TokenRequest{Profile: profile, Scopes: opts.scopes, MinValid: opts.minValid.Seconds(), ForceRefresh: opts.forceRefresh, Type: opts.tokenType}
	tok, err := fetchToken(ctx, streams.Err, req, opts.noAutostart)
	if err != nil {
		return err
	}
	if err := refuseBound(tok, profile, "`kc-agent token --format "+opts.format+"`",
		fmt.Sprintf("use `kc-agent token --format dpop --url URL [--method M]` (header lines with a proof for that one request), or a kc-agent route; or set `dpop: refresh` for profile %s", profile)); err != nil {
		return err
	}
	return printToken(streams.Out, opts.format, opts.tokenType, tok)
}

// printToken prints the access token, or with --type id the ID token, in
// one of the output formats: the one place `kc-agent token` writes a token.
func printToken(w io.Writer, format, tokenType string, tok *ipc.TokenResponse) error {
	value, typ, jsonKey, envName := tok.AccessToken, tok.TokenType, "access_token", "KC_AGENT_ACCESS_TOKEN"
	if tokenType == ipc.TokenTypeID {
		value, typ, jsonKey, envName = tok.IDToken, "Bearer", "id_token", "KC_AGENT_ID_TOKEN"
	}
	switch format {
	case "raw":
		fmt.Fprintln(w, value)
	case "header":
		fmt.Fprintf(w, "Authorization: %s %s\n", typ, value)
	case "env":
		fmt.Fprintf(w, "export %s='%s'\n", envName, value)
	case "json":
		return json.NewEncoder(w).Encode(map[string]any{
			jsonKey:      value,
			"token_type": typ,
			"expires_at": tok.ExpiresAt.UTC().Format(time.RFC3339),
			"expires_in": tok.ExpiresIn,
		})
	}
	return nil
}
