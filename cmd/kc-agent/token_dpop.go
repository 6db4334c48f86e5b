package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kc-agent/kc-agent/ipc"
)

// A DPoP-bound access token (a login made with dpop: on) is useless, and
// refused, where it goes as a Bearer token: every API that checks it wants
// a proof signed by the login's key, which only the agent holds. The
// commands that hand a token to another program refuse such a token with
// what to use instead; `kc-agent token --format dpop` prints it with a
// proof for one request.

// refuseBound is the error for a bound access token handed to user (what
// would send it as Bearer), with how to get a usable one; nil for a
// Bearer token or an ID token.
func refuseBound(tok *ipc.TokenResponse, profile, user, hint string) error {
	if tok.IDToken != "" || !strings.EqualFold(tok.TokenType, ipc.TokenTypeDPoP) {
		return nil
	}
	return &cliError{code: exitError,
		err:  fmt.Errorf("the access token of profile %q is DPoP-bound (a login made with dpop: on): APIs refuse a DPoP-bound token sent as a Bearer token, and %s can not send the proof it needs", profile, user),
		hint: hint}
}

// boundHint is what a refused command can do instead: a route, which
// signs a proof for every request, or the refresh mode.
func boundHint(profile string) string {
	return fmt.Sprintf("reach the API through a kc-agent route (it sends a proof with every request), or set `dpop: refresh` for profile %s and run `kc-agent login` (the offline token stays bound, access tokens are Bearer)", profile)
}

// fetchProof asks the verified agent for a token with a proof for one
// request, autostarting it when allowed.
func fetchProof(ctx context.Context, stderr io.Writer, req ipc.ProofRequest, noAutostart bool) (*ipc.ProofResponse, error) {
	c, err := ipc.NewClient()
	if err != nil {
		return nil, err
	}
	out, err := c.Proof(ctx, req)
	if errors.Is(err, ipc.ErrUnreachable) && autostartAllowed(noAutostart) {
		if serr := startAgent(ctx, c, stderr); serr != nil {
			return nil, serr
		}
		out, err = c.Proof(ctx, req)
	}
	return out, err
}

// checkDPoPFlags: --url, --method and --nonce go with --format dpop, which
// needs --url and is for access tokens.
func checkDPoPFlags(opts *tokenOptions) error {
	if opts.format != "dpop" {
		if opts.url != "" || opts.method != "" || opts.nonce != "" {
			return usageErr("--url, --method and --nonce go with --format dpop")
		}
		return nil
	}
	if opts.tokenType == ipc.TokenTypeID {
		return usageErr("--format dpop is for access tokens, not --type id")
	}
	if opts.url == "" {
		return usageErr("--format dpop needs --url, the URL of the request the proof is for")
	}
	if opts.method == "" {
		opts.method = "GET"
	}
	if err := ipc.CheckProofTarget(opts.method, opts.url, opts.nonce); err != nil {
		return usageErr("%v", err)
	}
	return nil
}

// printDPoP prints the header lines of one request: the token with its
// proof, or a Bearer token alone (an unbound login), for curl -H @-.
func printDPoP(w io.Writer, p *ipc.ProofResponse) {
	if p.Proof == "" {
		fmt.Fprintf(w, "Authorization: %s %s\n", p.TokenType, p.AccessToken)
		return
	}
	fmt.Fprintf(w, "Authorization: DPoP %s\nDPoP: %s\n", p.AccessToken, p.Proof)
}
