package oidc

import (
	"log/slog"
	"time"

	"github.com/kc-agent/kc-agent/agent/launcher"
)

// openLink opens a sign-in link through a one-time launcher link
// (agent/launcher), so the opener's argv shows no state, PKCE challenge or
// user code. The launcher lives until closeLink, at the end of the
// sign-in.
func openLink(open func(string) error, target string, until time.Time) (closeLink func(), err error) {
	if until.IsZero() {
		until = time.Now().Add(10 * time.Minute)
	}
	l, err := launcher.Start(slog.Default())
	if err != nil {
		return nil, err
	}
	if err := l.Open(open, target, until); err != nil {
		l.Close()
		return nil, err
	}
	return l.Close, nil
}
