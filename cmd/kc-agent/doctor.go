package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/cleartext"
	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/loopback"
	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

type check struct {
	name   string
	status string // ok, warn, fail
	detail string
	hint   string
}

func newDoctorCmd(streams *IOStreams) *cobra.Command {
	var profile string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the configuration, the issuer, the keychain, the browser and the socket",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			checks := doctorChecks(cmd.Context(), config.ProfileName(profile))
			failed := 0
			for _, c := range checks {
				fmt.Fprintf(streams.Out, "%-4s  %-22s %s\n", c.status, c.name, c.detail)
				if c.hint != "" && c.status != "ok" {
					fmt.Fprintf(streams.Out, "      %-22s hint: %s\n", "", c.hint)
				}
				if c.status == "FAIL" {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d check(s) failed", failed)
			}
			return nil
		},
	}
	profileFlag(cmd, &profile)
	return cmd
}

func doctorChecks(ctx context.Context, name string) []check {
	var checks []check
	add := func(c check) { checks = append(checks, c) }

	cfg, cfgChecks := configChecks()
	checks = append(checks, cfgChecks...)

	var prof config.Profile
	var client *oidc.Client
	var rec *store.Record
	haveProfile := false
	if cfg != nil {
		prof, haveProfile = cfg.Profile(name)
	}
	if !haveProfile {
		add(check{"profile " + name, "warn", "not configured", fmt.Sprintf("run `kc-agent login --profile %s <issuer-url>`", name)})
	} else {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		start := time.Now()
		c, err := oidc.ForProfile(dctx, prof)
		cancel()
		client = c
		if err != nil {
			add(check{"issuer discovery", "FAIL", err.Error(), oidc.HintOf(err)})
		} else {
			add(check{"issuer discovery", "ok", fmt.Sprintf("%s (%s)", prof.Issuer, time.Since(start).Round(time.Millisecond)), ""})
		}
	}

	for _, c := range cleartextChecks(ctx, cfg) {
		add(c)
	}

	add(keychainCheck(ctx, cfg, haveProfile && prof.Store == config.StoreFile))
	if haveProfile {
		st, _ := store.ForProfile(prof, nil)
		if st != nil {
			switch r, err := st.Get(ctx, name); {
			case err == nil:
				add(check{"stored login", "ok", "present in the " + st.Describe(), ""})
				rec = &r
			case errors.Is(err, store.ErrNotFound):
				add(check{"stored login", "warn", "none for profile " + name, "run `kc-agent login`"})
			default:
				add(check{"stored login", "FAIL", err.Error(), ""})
			}
		}
	}

	if haveProfile {
		checks = append(checks, dpopChecks(ctx, name, prof, client, rec)...)
	}
	if browserAvailable() {
		add(check{"browser", "ok", "login opens a browser", ""})
	} else {
		add(check{"browser", "ok", "none here: login will use the device flow", "set $BROWSER to override"})
	}

	for _, c := range agentChecks(ctx, cfg) {
		add(c)
	}
	return checks
}

// cleartextChecks looks at every loopback port a token goes to in the
// clear (issuers and route upstreams on http://127.0.0.1): who listens?
func cleartextChecks(ctx context.Context, cfg *config.Config) []check {
	if cfg == nil {
		return nil
	}
	type target struct {
		name, url, optIn string
		optedIn          bool
	}
	var targets []target
	for _, name := range cfg.ProfileNames() {
		p := cfg.Profiles[name]
		targets = append(targets, target{"issuer of " + name, p.Issuer, "unsafe_cleartext_issuer", p.UnsafeCleartextIssuer})
	}
	for _, r := range cfg.Routes {
		targets = append(targets, target{"route " + r.Name, r.Upstream, "unsafe_cleartext_upstream", r.UnsafeCleartextUpstream})
	}
	var checks []check
	for _, tg := range targets {
		u, err := url.Parse(tg.url)
		if err != nil || u.Scheme != "http" || !loopback.Host(u.Hostname()) {
			continue
		}
		port := u.Port()
		if port == "" {
			port = "80"
		}
		addr := net.JoinHostPort(u.Hostname(), port)
		if !cfg.OwnersVisible() {
			checks = append(checks, check{tg.name, "warn", "cleartext to " + addr + ": this system can not tell who listens there (" + tg.optIn + ")", "use https"})
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err = cleartext.Probe(pctx, u.Hostname(), port, tg.optedIn)
		cancel()
		var refused *cleartext.RefusedError
		switch {
		case err == nil:
			checks = append(checks, check{tg.name, "ok", addr + " (cleartext) is served by you", ""})
		case errors.As(err, &refused):
			checks = append(checks, check{tg.name, "FAIL", fmt.Sprintf("%s is served by %s, not by you: kc-agent sends no token there", addr, refused.Owner),
				"another user holds the port (is your server or port-forward down?): start yours there, or move it and the config to another port; `ss -ltnp` shows who listens"})
		default:
			checks = append(checks, check{tg.name, "warn", addr + ": " + err.Error(), "start the server (or port-forward) on that port; until then another user could take it, and kc-agent would refuse to send it anything"})
		}
	}
	return checks
}

// agentChecks reports where the agent is looked for, who owns each place,
// the one-agent lock, and whether the proxy address is really this agent's.
func agentChecks(ctx context.Context, cfg *config.Config) []check {
	var checks []check
	add := func(c check) { checks = append(checks, c) }
	cands, err := discovery.Candidates()
	if err != nil {
		return []check{{"socket", "FAIL", err.Error(), "set KC_AGENT_SOCK to a path in a private directory"}}
	}
	lock, lockErr := discovery.LockPath()
	for _, sock := range cands {
		name, dir, what := "socket directory", filepath.Dir(sock), "(yours, 0700)"
		if discovery.IsPipe(sock) {
			// A pipe has no directory: its DACL and the SID checks at both
			// ends guard it (`agent` below dials it and checks the server).
			add(check{"agent pipe", "ok", sock + " (named after your SID)", ""})
			if lockErr != nil {
				continue
			}
			name, dir, what = "state directory", filepath.Dir(lock), "(yours; no other account may write in it)"
		}
		err := discovery.CheckSocketDir(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			add(check{name, "ok", dir + " (not created yet)", ""})
		case err != nil:
			add(check{name, "FAIL", err.Error(), "someone else may be impersonating the agent: find out who created it, remove it (as root or an administrator if needed), or set KC_AGENT_SOCK"})
		default:
			add(check{name, "ok", dir + " " + what, ""})
		}
	}
	if lockErr == nil {
		h := ipc.ReadLockHolder(lock)
		if h.PID > 0 {
			add(check{"agent lock", "ok", fmt.Sprintf("%s: held by %s pid %d", lock, h.Role, h.PID), ""})
		} else {
			add(check{"agent lock", "ok", lock + ": free", ""})
		}
	}
	c, err := ipc.NewClient()
	if err != nil {
		add(check{"agent", "FAIL", err.Error(), "see the socket directory check above"})
		return checks
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.Health(hctx); err != nil {
		add(check{"agent", "warn", "not running (" + err.Error() + ")", "`kc-agent token` starts it, or install the service: `kc-agent service install`"})
		if cfg != nil && (len(cfg.Routes) > 0 || cfg.Proxy != (config.Proxy{})) {
			add(portCheck(cfg.ProxyListen(), cfg))
		}
		return checks
	}
	add(check{"agent", "ok", "running at " + c.Path + ", verified to be yours", ""})
	st, err := c.Status(hctx)
	if err != nil {
		add(check{"agent status", "FAIL", err.Error(), ""})
		return checks
	}
	return append(checks, proxyChecks(st.Proxy, cfg)...)
}

// proxyChecks reports the running agent's proxy: where it listens (and
// that the address is really this user's), a wait for a taken address,
// and each warning with its own hint.
func proxyChecks(ps ipc.ProxyStatus, cfg *config.Config) []check {
	var checks []check
	add := func(c check) { checks = append(checks, c) }
	switch {
	case !ps.Configured:
		add(check{"proxy", "ok", "none configured", ""})
	case ps.Retrying:
		add(check{"proxy", "FAIL", "waiting for its address (retrying in the background): " + ps.Error, ps.Hint})
	case !ps.Running:
		add(check{"proxy", "FAIL", ps.Error, "see `kc-agent status`; the agent retries when the config changes or it restarts"})
	default:
		if pc := portCheck(ps.Addr, cfg); pc.status != "ok" {
			add(pc)
		} else {
			add(check{"proxy", "ok", "listening on " + ps.Addr + ", owned by you", ""})
		}
		if ps.Error != "" {
			add(check{"proxy config", "FAIL", ps.Error, "the last good settings stay live; fix the config file"})
		}
	}
	for i, w := range ps.Warnings {
		hint := ""
		if i < len(ps.WarningHints) {
			hint = ps.WarningHints[i] // each warning its own
		}
		add(check{"proxy", "warn", w, hint})
	}
	return checks
}

// portCheck tells whether addr is free, or served by this user, or taken
// by another user (squatted).
func portCheck(addr string, cfg *config.Config) check {
	if !peer.Visible {
		return check{"proxy port", "ok", addr + " (owner not visible on this system)", ""}
	}
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return check{"proxy port", "FAIL", fmt.Sprintf("%q is not host:port", addr), "fix proxy.listen"}
	}
	o, err := peer.TCPListener(ta)
	switch {
	case errors.Is(err, peer.ErrNoOwner):
		return check{"proxy port", "FAIL", fmt.Sprintf("can not tell who serves %s: %v", addr, err), "env and exec refuse a proxy whose owner is unknown"}
	case err != nil:
		return check{"proxy port", "ok", addr + " is free", ""}
	case !o.Self():
		return check{"proxy port", "FAIL", fmt.Sprintf("%s is taken by %s, not by you", addr, o), "another user holds the address and would receive your API traffic: " + cfg.ListenAdvice()}
	}
	return check{"proxy port", "ok", addr + " is served by you", ""}
}

// keychainInUse tells whether a profile keeps its token in the keychain,
// or, with no profile yet, whether the first login would.
func keychainInUse(cfg *config.Config) bool {
	if cfg == nil || len(cfg.Profiles) == 0 {
		return cfg == nil || cfg.Store != config.StoreFile
	}
	for _, n := range cfg.ProfileNames() {
		if p, _ := cfg.Profile(n); p.Store == config.StoreKeychain {
			return true
		}
	}
	return false
}

// keychainCheck probes the keychain when a profile uses it; for a profile
// that keeps its token in a file (fileProfile) a failure is only a warning.
func keychainCheck(ctx context.Context, cfg *config.Config, fileProfile bool) check {
	if !keychainInUse(cfg) {
		// Probing a keychain nobody uses would only reach for a D-Bus
		// session that isn't there.
		return check{"keychain", "ok", "not checked: no profile keeps its token there", ""}
	}
	kc := store.NewKeychain()
	if err := kc.Probe(ctx); err != nil {
		status, hint := "FAIL", ""
		var ue *store.UnavailableError
		if errors.As(err, &ue) {
			hint = ue.Hint()
		}
		if fileProfile {
			status = "warn"
		}
		return check{"keychain", status, err.Error(), hint}
	}
	return check{"keychain", "ok", kc.Describe() + ": write, read and delete work", ""}
}

// configChecks loads the config and says where each profile and route
// comes from, and whether the system-wide file is ignored; cfg is nil when
// the config can't be loaded.
func configChecks() (cfg *config.Config, checks []check) {
	add := func(c check) { checks = append(checks, c) }
	path, err := config.FilePath()
	if err != nil {
		add(check{"config", "FAIL", err.Error(), "set KC_AGENT_CONFIG to a file path"})
	} else if cfg, err = config.Load(path); err != nil {
		add(check{"config", "FAIL", err.Error(), "fix the file; the running agent keeps the last good config meanwhile"})
	} else if _, statErr := os.Stat(path); statErr != nil && cfg.SystemPath() == "" {
		add(check{"config", "warn", path + " does not exist yet (nor a system-wide " + config.SystemFilePath() + ")", "run `kc-agent login <issuer-url>` to create it"})
	} else {
		detail := fmt.Sprintf("%s (%d profile(s), %d route(s))", path, len(cfg.Profiles), len(cfg.Routes))
		if statErr != nil {
			detail = fmt.Sprintf("%s does not exist: %d profile(s), %d route(s)", path, len(cfg.Profiles), len(cfg.Routes))
		}
		if sp := cfg.SystemPath(); sp != "" {
			detail += ", under the system-wide " + sp
		}
		add(check{"config", "ok", detail, ""})
		for _, n := range cfg.ProfileNames() {
			add(check{"profile " + n, "ok", "from " + cfg.ProfileSource(n), ""})
		}
		for _, r := range cfg.Routes {
			add(check{"route " + r.Name, "ok", r.Upstream + " from " + cfg.RouteSource(r.Name), ""})
		}
		for _, err := range cfg.LeftOut() {
			add(check{"system route", "warn", "left out: " + err.Error(), "define that profile in your own config (`kc-agent login --profile <name> <issuer-url>`) to use the route"})
		}
	}
	if cfg != nil && cfg.SystemError() != nil {
		add(check{"system config", "FAIL", "ignored: " + cfg.SystemError().Error(), "ask the administrator to fix it; your own profiles keep serving"})
	}
	return cfg, checks
}
