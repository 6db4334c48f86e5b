package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/ipc"
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
		Args:  cobra.NoArgs,
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

	path, err := config.FilePath()
	var cfg *config.Config
	if err != nil {
		add(check{"config", "FAIL", err.Error(), "set KC_AGENT_CONFIG to a file path"})
	} else if cfg, err = config.Load(path); err != nil {
		add(check{"config", "FAIL", err.Error(), "fix the file; the running agent keeps the last good config meanwhile"})
	} else if _, statErr := os.Stat(path); statErr != nil {
		add(check{"config", "warn", path + " does not exist yet", "run `kc-agent login <issuer-url>` to create it"})
	} else {
		add(check{"config", "ok", fmt.Sprintf("%s (%d profile(s), %d route(s))", path, len(cfg.Profiles), len(cfg.Routes)), ""})
	}

	var prof config.Profile
	haveProfile := false
	if cfg != nil {
		prof, haveProfile = cfg.Profile(name)
	}
	if !haveProfile {
		add(check{"profile " + name, "warn", "not configured", fmt.Sprintf("run `kc-agent login --profile %s <issuer-url>`", name)})
	} else {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		start := time.Now()
		_, err := oidc.New(dctx, prof.Issuer, prof.ClientID)
		cancel()
		if err != nil {
			add(check{"issuer discovery", "FAIL", err.Error(), oidc.HintOf(err)})
		} else {
			add(check{"issuer discovery", "ok", fmt.Sprintf("%s (%s)", prof.Issuer, time.Since(start).Round(time.Millisecond)), ""})
		}
	}

	kc := store.NewKeychain()
	if err := kc.Probe(ctx); err != nil {
		status, hint := "FAIL", ""
		var ue *store.UnavailableError
		if errors.As(err, &ue) {
			hint = ue.Hint()
		}
		if haveProfile && prof.Store == config.StoreFile {
			status = "warn"
		}
		add(check{"keychain", status, err.Error(), hint})
	} else {
		add(check{"keychain", "ok", kc.Describe() + ": write, read and delete work", ""})
	}
	if haveProfile {
		st, _ := store.ForProfile(prof, nil)
		if st != nil {
			switch _, err := st.Get(ctx, name); {
			case err == nil:
				add(check{"stored login", "ok", "present in the " + st.Describe(), ""})
			case errors.Is(err, store.ErrNotFound):
				add(check{"stored login", "warn", "none for profile " + name, "run `kc-agent login`"})
			default:
				add(check{"stored login", "FAIL", err.Error(), ""})
			}
		}
	}

	if browserAvailable() {
		add(check{"browser", "ok", "login opens a browser", ""})
	} else {
		add(check{"browser", "ok", "none here: login will use the device flow", "set $BROWSER to override"})
	}

	sock, err := ipc.SocketPath()
	if err != nil {
		add(check{"socket", "FAIL", err.Error(), "set KC_AGENT_SOCK to a path in a private directory"})
	} else if err := ipc.CheckSocketDir(filepath.Dir(sock)); err != nil && !errors.Is(err, os.ErrNotExist) {
		add(check{"socket directory", "FAIL", err.Error(), "the directory must be yours and mode 0700"})
	} else {
		add(check{"socket directory", "ok", filepath.Dir(sock), ""})
		c, _ := ipc.NewClient()
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if c != nil && c.Health(hctx) == nil {
			add(check{"agent", "ok", "running at " + sock, ""})
			if st, err := c.Status(hctx); err == nil {
				switch {
				case st.ProxyError != "":
					add(check{"proxy", "FAIL", st.ProxyError, "free the port or set proxy.listen in the config"})
				case st.ProxyAddr != "":
					add(check{"proxy", "ok", "listening on " + st.ProxyAddr, ""})
				case cfg != nil && len(cfg.Routes) > 0:
					add(check{"proxy", "warn", "routes are configured but the agent runs no proxy", "the agent reloads the config by itself; check `kc-agent status`"})
				}
			}
		} else {
			add(check{"agent", "warn", "not running", "`kc-agent token` starts it, or install the service: `kc-agent service install`"})
		}
		cancel()
	}
	return checks
}
