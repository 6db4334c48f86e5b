package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/ipc"
)

// The client-go exec credential API versions kc-agent answers in.
const (
	execV1      = "client.authentication.k8s.io/v1"
	execV1beta1 = "client.authentication.k8s.io/v1beta1"
)

// execInfoMax bounds KUBERNETES_EXEC_INFO: it carries at most cluster
// info, which a CA bundle makes a few kilobytes.
const execInfoMax = 1 << 20

// kubeMinWindow is the least time kubectl may use a credential for after
// the margin is taken off: the agent refreshes first if its token has less.
const kubeMinWindow = 5 * time.Second

type kubeCredentialOptions struct {
	profile     string
	scopes      []string
	tokenType   string
	apiVersion  string
	margin      time.Duration
	noAutostart bool
}

func newKubeCredentialCmd(streams *IOStreams) *cobra.Command {
	opts := &kubeCredentialOptions{}
	cmd := &cobra.Command{
		Use:   "kube-credential",
		Short: "Give kubectl a token (a client-go exec credential plugin)",
		Long: `Answer kubectl (and anything built on client-go) with an ExecCredential that
holds a token of your kc-agent login. kubectl runs it from the exec block of a
kubeconfig user; kc-agent kubeconfig writes one.

The answer is in the apiVersion client-go asks for in KUBERNETES_EXEC_INFO
(client.authentication.k8s.io/v1 or v1beta1; --api-version when the variable
is absent). Its expirationTimestamp is the token's expiry minus
--expiry-margin (at most half the token's remaining life), so kubectl never
sends a token about to expire.

Never interactive: it never opens a browser. When the login is gone it prints
the reason to stderr (kubectl shows it) and exits 4.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return kubeCredentialRun(cmd.Context(), streams, opts)
		},
	}
	profileFlag(cmd, &opts.profile)
	cmd.Flags().StringArrayVar(&opts.scopes, "scope", nil, "ask for a token narrowed to these scopes (repeatable), e.g. a client scope with the API server's audience")
	tokenTypeFlag(cmd, &opts.tokenType, "token-type", ipc.TokenTypeID)
	cmd.Flags().StringVar(&opts.apiVersion, "api-version", execV1beta1, "ExecCredential apiVersion when KUBERNETES_EXEC_INFO is not set")
	cmd.Flags().DurationVar(&opts.margin, "expiry-margin", 30*time.Second, "tell kubectl the token expires this much before it does")
	cmd.Flags().BoolVar(&opts.noAutostart, "no-autostart", false, "fail (exit 3) instead of starting an agent")
	return cmd
}

// execCredential is the part of client-go's ExecCredential kc-agent reads
// and writes; v1 and v1beta1 share these fields.
type execCredential struct {
	Kind       string               `json:"kind"`
	APIVersion string               `json:"apiVersion"`
	Spec       execCredentialSpec   `json:"spec"`
	Status     *execCredentialToken `json:"status,omitempty"`
}

type execCredentialSpec struct {
	Interactive bool `json:"interactive"`
}

type execCredentialToken struct {
	ExpirationTimestamp string `json:"expirationTimestamp"`
	Token               string `json:"token"`
}

// execAPIVersion is the version to answer in: the one client-go asked for
// in KUBERNETES_EXEC_INFO, else the flag's.
func execAPIVersion(info, flag string) (string, error) {
	if info == "" {
		if flag != execV1 && flag != execV1beta1 {
			return "", usageErr("--api-version must be %s or %s, not %q", execV1, execV1beta1, flag)
		}
		return flag, nil
	}
	if len(info) > execInfoMax {
		return "", usageErr("KUBERNETES_EXEC_INFO is larger than %d bytes", execInfoMax)
	}
	var ec execCredential
	if err := json.Unmarshal([]byte(info), &ec); err != nil {
		return "", usageErr("KUBERNETES_EXEC_INFO is not an ExecCredential: %v", err)
	}
	if ec.Kind != "ExecCredential" {
		return "", usageErr("KUBERNETES_EXEC_INFO is a %q, not an ExecCredential", ec.Kind)
	}
	if ec.APIVersion != execV1 && ec.APIVersion != execV1beta1 {
		return "", &cliError{code: exitUsage, err: fmt.Errorf("kubectl asks for an ExecCredential in %q, which kc-agent does not speak", ec.APIVersion),
			hint: fmt.Sprintf("set apiVersion: %s in the kubeconfig's exec block", execV1)}
	}
	return ec.APIVersion, nil
}

func kubeCredentialRun(ctx context.Context, streams *IOStreams, opts *kubeCredentialOptions) error {
	if err := checkTokenType(opts.tokenType); err != nil {
		return err
	}
	if opts.margin < 0 || opts.margin > time.Hour {
		return usageErr("--expiry-margin must be between 0 and 1h")
	}
	version, err := execAPIVersion(os.Getenv("KUBERNETES_EXEC_INFO"), opts.apiVersion)
	if err != nil {
		return err
	}
	// spec.interactive is ignored on purpose: kubectl in a terminal still
	// gets no browser from here; `kc-agent login` is the one place for that.
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req := ipc.TokenRequest{Profile: config.ProfileName(opts.profile), Scopes: opts.scopes,
		MinValid: (opts.margin + kubeMinWindow).Seconds(), Type: opts.tokenType}
	tok, err := fetchToken(ctx, streams.Err, req, opts.noAutostart)
	if err != nil {
		return err
	}
	if err := refuseBound(tok, req.Profile, "kubectl",
		"use the ID token (--token-type id, the default): it is never bound; or set `dpop: refresh` for profile "+req.Profile); err != nil {
		return err
	}
	// A margin no token could leave room for (tokens shorter-lived than it)
	// shrinks to half the token's remaining life.
	margin := max(min(opts.margin, time.Until(tok.ExpiresAt)/2), 0)
	out := execCredential{Kind: "ExecCredential", APIVersion: version, Status: &execCredentialToken{
		ExpirationTimestamp: tok.ExpiresAt.Add(-margin).UTC().Format(time.RFC3339),
		Token:               tok.Token(),
	}}
	return json.NewEncoder(streams.Out).Encode(out)
}
