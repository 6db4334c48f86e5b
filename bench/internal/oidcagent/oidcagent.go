// Package oidcagent sets up Debian's oidc-agent, the peer the token
// benchmarks compare with, non-interactively: the same realm, user and
// client as kc-agent, with its own copy of the offline token.
package oidcagent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Agent is a running oidc-agent with one account configured.
type Agent struct {
	Version string
	account string
	env     []string
	pid     string
}

// Start runs oidc-agent with its config in dir and configures account for
// issuer with refreshToken (passed through the environment, never argv:
// a command line is visible to every user in ps). Stop ends it.
func Start(issuer, refreshToken, dir, account string) (*Agent, error) {
	if _, err := exec.LookPath("oidc-agent"); err != nil {
		return nil, fmt.Errorf("oidc-agent not installed (apt-get install oidc-agent-cli)")
	}
	cfgDir := filepath.Join(dir, "oidc-agent")
	os.MkdirAll(cfgDir, 0o700)
	a := &Agent{account: account, env: append(os.Environ(), "OIDC_CONFIG_DIR="+cfgDir, "OIDC_ENCRYPTION_PW=kc-agent-bench")}
	out, err := exec.Command("oidc-agent", "--no-autoload").Output()
	if err != nil {
		return nil, fmt.Errorf("starting oidc-agent: %v", err)
	}
	var sock string
	for _, part := range strings.Split(string(out), ";") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "OIDC_SOCK="); ok {
			sock = v
		}
		if v, ok := strings.CutPrefix(part, "OIDCD_PID="); ok {
			a.pid = v
		}
	}
	a.env = append(a.env, "OIDC_SOCK="+sock)
	gen := exec.Command("oidc-gen", "--manual", "--iss="+issuer, "--client-id=kc-agent", "--client-secret=",
		"--flow=refresh", "--rt-env=KC_BENCH_REFRESH_TOKEN", "--scope=openid offline_access profile email",
		"--redirect-uri=http://localhost:4242", "--pw-env", "--prompt=none", "--confirm-default", "--no-url-call", account)
	gen.Env = append(a.env, "KC_BENCH_REFRESH_TOKEN="+refreshToken)
	if out, err := gen.CombinedOutput(); err != nil {
		a.Stop()
		return nil, fmt.Errorf("oidc-gen: %v: %s", err, out)
	}
	vout, _ := exec.Command("oidc-agent", "--version").Output()
	a.Version = strings.TrimSpace(strings.TrimPrefix(string(vout), "oidc-agent"))
	return a, nil
}

// Token returns a call of `oidc-token [args] account`, for timing.
func (a *Agent) Token(args ...string) func() error {
	return func() error {
		c := exec.Command("oidc-token", append(args, a.account)...)
		c.Env = a.env
		return c.Run()
	}
}

// Stop ends the agent.
func (a *Agent) Stop() {
	if a.pid != "" {
		exec.Command("kill", a.pid).Run()
	}
}
