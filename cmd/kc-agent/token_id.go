package main

import (
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
