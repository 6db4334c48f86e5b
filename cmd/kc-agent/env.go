package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/ipc"
)

// proxyEnv asks the verified agent whether its proxy runs and where, and
// computes the variables that send a program's HTTP through it, in a
// stable order. With no proxy configured there are no proxy variables
// (note says why); a proxy that should run but does not, or an address
// that another user's process serves, is an error: kc-agent never points
// a program at a proxy nobody, or somebody else, listens on.
func proxyEnv(ctx context.Context, stderr io.Writer, noAutostart bool) (vars [][2]string, note string, err error) {
	c, err := connectAgent(ctx, stderr, noAutostart)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ps, err := c.Proxy(ctx)
	if err != nil {
		return nil, "", err
	}
	if !ps.Configured {
		return nil, "no proxy variables: no proxy is configured (add routes to the config file)", nil
	}
	if !ps.Running {
		hint := "see `kc-agent status` and `kc-agent doctor`"
		if ps.Retrying {
			hint = ps.Hint // the agent's own advice, which knows the config
		}
		return nil, "", &cliError{code: exitError, err: fmt.Errorf("the agent's proxy is not running: %s", ps.Error), hint: hint}
	}
	if err := verifyProxyOwner(ps.Addr); err != nil {
		return nil, "", err
	}
	noProxy := noProxyList(*ps)
	vars = [][2]string{
		{"HTTP_PROXY", ps.URL}, {"HTTPS_PROXY", ps.URL},
		{"http_proxy", ps.URL}, {"https_proxy", ps.URL},
		{"NO_PROXY", noProxy}, {"no_proxy", noProxy},
	}
	if ps.CABundle != "" {
		for _, k := range []string{"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"} {
			vars = append(vars, [2]string{k, ps.CABundle})
		}
	}
	routes := slices.Clone(ps.Routes)
	slices.SortFunc(routes, func(a, b ipc.RouteInfo) int { return strings.Compare(a.Name, b.Name) })
	for _, r := range routes {
		vars = append(vars, [2]string{"KC_AGENT_URL_" + envName(r.Name), r.URL})
	}
	return vars, "", nil
}

// verifyProxyOwner checks, where the system shows it (Linux, Windows), that the
// proxy address is served by this user: the agent said it listens there,
// but a client trusts only what it can check.
func verifyProxyOwner(addr string) error {
	if !peer.Visible {
		return nil
	}
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return fmt.Errorf("the agent reported a proxy address %q that is not host:port", addr)
	}
	o, err := peer.TCPListener(ta)
	if errors.Is(err, peer.ErrNoOwner) {
		return &cliError{code: exitError, err: fmt.Errorf("can not tell who serves the proxy address %s (%v); not using it", addr, err),
			hint: "see `kc-agent doctor`; the agent's routes are also reachable without env, at the URLs `kc-agent status` lists"}
	}
	if err != nil {
		return &cliError{code: exitError, err: fmt.Errorf("nobody listens on the proxy address %s", addr),
			hint: "the agent's proxy stopped; see `kc-agent status`"}
	}
	if !o.Self() {
		me := fmt.Sprintf("uid %d", os.Getuid())
		if runtime.GOOS == "windows" {
			me = "your account"
		}
		return &cliError{code: exitError, err: fmt.Errorf("the proxy address %s is served by %s, not by you (%s)", addr, o, me),
			hint: "another user holds the address: " + (*config.Config)(nil).ListenAdvice()}
	}
	return nil
}

// noProxyList keeps local addresses, the proxy's own (a per-user
// 127.1.x.y with proxy.listen: auto) and its routes' among them, off the
// proxy: a route URL is called directly, not through the forward proxy.
func noProxyList(ps ipc.ProxyStatus) string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	add := func(hostport string) {
		if h, _, err := net.SplitHostPort(hostport); err == nil && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	add(ps.Addr)
	for _, r := range ps.Routes {
		if u, err := url.Parse(r.URL); err == nil {
			add(u.Host)
		}
	}
	return strings.Join(hosts, ",")
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
	var noAutostart bool
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Print shell exports that route HTTP(S) through the agent's proxy",
		Long: `Print HTTP_PROXY/HTTPS_PROXY (with the per-user proxy secret), NO_PROXY, the CA
bundle variables when a route intercepts TLS, and KC_AGENT_URL_<ROUTE> for each
route, as the running agent reports them (it is started when none runs).
With no routes configured it prints no proxy variables and says so on
stderr. Use it as:  eval "$(kc-agent env)"`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch shell {
			case "bash", "zsh", "sh", "fish", "powershell":
			default:
				return usageErr("--shell must be bash, zsh, fish or powershell, not %q", shell)
			}
			vars, note, err := proxyEnv(cmd.Context(), streams.Err, noAutostart)
			if err != nil {
				return err
			}
			if note != "" {
				fmt.Fprintf(streams.Err, "kc-agent: %s\n", note)
			}
			for _, kv := range vars {
				switch shell {
				case "fish":
					fmt.Fprintf(streams.Out, "set -gx %s %s;\n", kv[0], quoteSh(kv[1]))
				case "powershell":
					fmt.Fprintf(streams.Out, "$env:%s = %s\n", kv[0], quotePS(kv[1]))
				default:
					fmt.Fprintf(streams.Out, "export %s=%s\n", kv[0], quoteSh(kv[1]))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noAutostart, "no-autostart", false, "fail (exit 3) instead of starting an agent")
	cmd.Flags().StringVar(&shell, "shell", "bash", "bash, zsh, fish or powershell")
	return cmd
}
