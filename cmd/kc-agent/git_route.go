package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
)

// gitSetupThroughRoute sets git up for a plain-http loopback remote. git
// must never hold a token for it: git sends credentials on whatever
// connection it has, and a loopback port's connection may lead to another
// user (one who answered git's first request with a kept-alive 401, then
// let the port go). So git is pointed at the agent's route instead
// (url.<route URL>.insteadOf <remote>): the proxy accepts only this
// user's connections, checks every connection to the upstream before the
// first byte, and adds the token itself.
func gitSetupThroughRoute(ctx context.Context, streams *IOStreams, cfg *config.Config, u *url.URL, route config.Route, opts *gitSetupOptions) error {
	c, err := connectAgent(ctx, streams.Err, false)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ps, err := c.Proxy(pctx)
	if err != nil {
		return err
	}
	if !ps.Running {
		return &cliError{code: exitError, err: fmt.Errorf("the agent's proxy is not running (%s), and git reaches %s only through it", ps.Error, u),
			hint: "see `kc-agent status`; then run this again"}
	}
	if err := verifyProxyOwner(ps.Addr); err != nil {
		return err
	}
	local := ""
	for _, r := range ps.Routes {
		if r.Name == route.Name {
			local = r.URL
		}
	}
	if local == "" {
		return &cliError{code: exitError, err: fmt.Errorf("the running agent has no route %q", route.Name),
			hint: "restart the agent so it reads the config file (kc-agent service restart), then run this again"}
	}
	remote := strings.TrimSuffix(u.String(), "/")
	target := strings.TrimSuffix(local, "/") + routeSuffix(u, route)
	steps := [][]string{{"config", "--global", "--replace-all", "url." + target + ".insteadOf", remote}}
	if done, err := runGitConfig(ctx, streams, steps, u.String(), opts.print); done || err != nil {
		return err
	}
	fmt.Fprintf(streams.Err, "kc-agent: git now reaches %s through the route %q (%s): the route adds the token, git never holds one\n", remote, route.Name, target)
	if _, port, _ := net.SplitHostPort(cfg.ProxyListen()); port == "0" {
		fmt.Fprintf(streams.Err, "kc-agent: warning: proxy.listen picks a new port whenever the agent starts, and this git setting names today's; set a fixed proxy.listen, or run this again after a restart\n")
	}
	return nil
}

// routeSuffix is the part of u's path below the route's upstream path,
// escaped as in u ("" or "/…").
func routeSuffix(u *url.URL, route config.Route) string {
	up, err := url.Parse(route.Upstream)
	if err != nil {
		return ""
	}
	base := strings.TrimSuffix(up.EscapedPath(), "/")
	rest := strings.TrimSuffix(strings.TrimPrefix(u.EscapedPath(), base), "/")
	if rest != "" && !strings.HasPrefix(rest, "/") {
		rest = "/" + rest
	}
	return rest
}
