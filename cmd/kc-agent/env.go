package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/proxy"
	"github.com/kc-agent/kc-agent/ipc"
)

// proxyEnv computes the variables that send a program's HTTP through the
// agent's proxy, in a stable order.
func proxyEnv(cfg *config.Config) ([][2]string, error) {
	state, err := config.StateDir()
	if err != nil {
		return nil, err
	}
	secret, err := proxy.LoadOrCreateSecret(state)
	if err != nil {
		return nil, err
	}
	listen := cfg.ProxyListen()
	proxyURL := (&url.URL{Scheme: "http", User: url.UserPassword(proxy.ProxyUser, secret), Host: listen}).String()
	noProxy := "localhost,127.0.0.1,::1"
	vars := [][2]string{
		{"HTTP_PROXY", proxyURL}, {"HTTPS_PROXY", proxyURL},
		{"http_proxy", proxyURL}, {"https_proxy", proxyURL},
		{"NO_PROXY", noProxy}, {"no_proxy", noProxy},
	}
	intercept := false
	for _, r := range cfg.Routes {
		intercept = intercept || r.Intercept
	}
	if intercept {
		ca, err := proxy.LoadOrCreateCA(proxy.CADir(state))
		if err != nil {
			return nil, fmt.Errorf("local CA: %w", err)
		}
		for _, k := range []string{"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"} {
			vars = append(vars, [2]string{k, ca.BundlePath()})
		}
	}
	routes := append([]config.Route(nil), cfg.Routes...)
	sort.Slice(routes, func(i, j int) bool { return routes[i].Name < routes[j].Name })
	for _, r := range routes {
		base := "http://" + listen + "/" + r.Name
		if r.Listen != "" {
			base = "http://" + r.Listen
		}
		vars = append(vars, [2]string{"KC_AGENT_URL_" + envName(r.Name), base})
	}
	return vars, nil
}

func loadProxyEnv() ([][2]string, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, err
	}
	return proxyEnv(cfg)
}

func envName(s string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(s) {
		if c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func quoteSh(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }

func quotePS(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

func newEnvCmd(streams *IOStreams) *cobra.Command {
	var shell string
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Print shell exports that route HTTP(S) through the agent's proxy",
		Long: `Print HTTP_PROXY/HTTPS_PROXY (with the per-user proxy secret), NO_PROXY, the CA
bundle variables when a route intercepts TLS, and KC_AGENT_URL_<ROUTE> for each
route. Use it as:  eval "$(kc-agent env)"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			vars, err := loadProxyEnv()
			if err != nil {
				return err
			}
			for _, kv := range vars {
				switch shell {
				case "bash", "zsh", "sh":
					fmt.Fprintf(streams.Out, "export %s=%s\n", kv[0], quoteSh(kv[1]))
				case "fish":
					fmt.Fprintf(streams.Out, "set -gx %s %s;\n", kv[0], quoteSh(kv[1]))
				case "powershell":
					fmt.Fprintf(streams.Out, "$env:%s = %s\n", kv[0], quotePS(kv[1]))
				default:
					return usageErr("--shell must be bash, zsh, fish or powershell, not %q", shell)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&shell, "shell", "bash", "bash, zsh, fish or powershell")
	return cmd
}

func newExecCmd(streams *IOStreams) *cobra.Command {
	var noAutostart bool
	cmd := &cobra.Command{
		Use:   "exec -- COMMAND [ARGS...]",
		Short: "Run a command with the proxy variables set (starting the agent if needed)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vars, err := loadProxyEnv()
			if err != nil {
				return err
			}
			c, err := ipc.NewClient()
			if err != nil {
				return err
			}
			hctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
			herr := c.Health(hctx)
			cancel()
			if herr != nil && autostartAllowed(noAutostart) {
				if err := startAgent(cmd.Context(), c, streams.Err); err != nil {
					return err
				}
			}
			child := exec.Command(args[0], args[1:]...)
			child.Stdin, child.Stdout, child.Stderr = streams.In, streams.Out, streams.Err
			child.Env = os.Environ()
			for _, kv := range vars {
				child.Env = append(child.Env, kv[0]+"="+kv[1])
			}
			if err := child.Start(); err != nil {
				return withHint(fmt.Errorf("can not run %s: %w", args[0], err), "check the command name and PATH")
			}
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			defer signal.Stop(sigs)
			go func() {
				for s := range sigs {
					child.Process.Signal(s)
				}
			}()
			err = child.Wait()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return &childExit{code: ee.ExitCode()}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&noAutostart, "no-autostart", false, "do not start an agent")
	return cmd
}

// childExit passes a child's exit status through without a message.
type childExit struct{ code int }

func (e *childExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }
