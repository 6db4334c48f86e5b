package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/ipc"
)

// tokenTypeFlag adds the flag that picks the access or the ID token.
func tokenTypeFlag(cmd *cobra.Command, p *string, name, def string) {
	cmd.Flags().StringVar(p, name, def, "which token: access, or id (the ID token, which many Kubernetes API servers validate)")
}

func checkTokenType(t string) error {
	switch t {
	case ipc.TokenTypeAccess, ipc.TokenTypeID:
		return nil
	}
	return usageErr("the token type must be %s or %s, not %q", ipc.TokenTypeAccess, ipc.TokenTypeID, t)
}

// printIDToken is `kc-agent token --type id` in each output format.
func printIDToken(w io.Writer, format string, tok *ipc.TokenResponse) error {
	switch format {
	case "raw":
		fmt.Fprintln(w, tok.IDToken)
	case "header":
		fmt.Fprintf(w, "Authorization: Bearer %s\n", tok.IDToken)
	case "env":
		fmt.Fprintf(w, "export KC_AGENT_ID_TOKEN='%s'\n", tok.IDToken)
	case "json":
		return json.NewEncoder(w).Encode(struct {
			IDToken   string `json:"id_token"`
			TokenType string `json:"token_type"`
			ExpiresAt string `json:"expires_at"`
			ExpiresIn int64  `json:"expires_in"`
		}{tok.IDToken, "Bearer", tok.ExpiresAt.UTC().Format(time.RFC3339), tok.ExpiresIn})
	}
	return nil
}
