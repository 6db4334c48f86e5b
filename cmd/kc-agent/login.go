package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/session"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

type loginOptions struct {
	io         *IOStreams
	issuer     string
	profile    string
	clientID   string
	scopes     []string
	device     bool
	noBrowser  bool
	storeKind  string
	timeout    time.Duration
	switchUser bool
}

// openURLHook, when set (by tests), replaces opening a real browser.
var openURLHook func(string) error

func newLoginCmd(streams *IOStreams) *cobra.Command {
	opts := &loginOptions{io: streams}
	cmd := &cobra.Command{
		Use:   "login [issuer-url]",
		Short: "Sign in once and keep an offline token in the keychain",
		Long: `Sign in to a Keycloak realm (or any OIDC provider) and keep the offline token
in the OS keychain. The issuer URL is the realm URL, for example
https://sso.example.com/realms/analytics. It is saved in the profile, so later
logins need no argument.

A browser opens for the sign-in (authorization code with PKCE). Without a
display, over SSH without $BROWSER, or with --device, kc-agent shows a code
and a QR code to approve on another device instead.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.issuer = strings.TrimRight(args[0], "/")
			}
			if opts.device && opts.noBrowser {
				return usageErr("--device and --no-browser do not go together: --device already needs no local browser")
			}
			return loginRun(cmd.Context(), opts)
		},
	}
	profileFlag(cmd, &opts.profile)
	cmd.Flags().StringVar(&opts.clientID, "client-id", "", "OIDC client id (default \"kc-agent\", or the profile's)")
	cmd.Flags().StringArrayVar(&opts.scopes, "scope", nil, "extra scope to ask for (repeatable); openid and offline_access are always asked for")
	cmd.Flags().BoolVar(&opts.device, "device", false, "use the device flow: approve the login on another device")
	cmd.Flags().BoolVar(&opts.noBrowser, "no-browser", false, "print the login URL instead of opening a browser")
	cmd.Flags().StringVar(&opts.storeKind, "store", "", "where to keep the offline token: keychain (default) or file (0600 file, for hosts without a keychain)")
	cmd.Flags().DurationVar(&opts.timeout, "timeout", 5*time.Minute, "give up when the login is not finished in this time")
	cmd.Flags().BoolVar(&opts.switchUser, "switch-user", false, "replace the stored login even when it belongs to another user")
	return cmd
}

func loginRun(ctx context.Context, opts *loginOptions) error {
	cfg, err := loadConfig()
	if errors.Is(err, config.ErrEmpty) {
		// An empty file holds nothing to lose: start it afresh.
		path, _ := config.FilePath()
		cfg, err = config.Empty(path), nil
	}
	if err != nil {
		return err
	}
	name := config.ProfileName(opts.profile)
	prof, err := opts.profileFor(cfg, name)
	if err != nil {
		return err
	}
	req := ipc.LoginRequest{Profile: name, Flow: opts.flow(), SwitchUser: opts.switchUser}
	// The agent is the one writer of the store: while one runs, it signs
	// the profile in; otherwise this command does, under the one-agent lock.
	if c := runningAgent(ctx); c != nil {
		return opts.loginViaAgent(ctx, c, cfg, name, prof, req)
	}
	return underLock("login", func() error { return opts.loginHere(ctx, cfg, name, prof, req) })
}

// loginViaAgent has the agent run the sign-in (after saving the profile
// when the flags change it, so the agent reads it) and shows it.
func (opts *loginOptions) loginViaAgent(ctx context.Context, c *ipc.Client, cfg *config.Config, name string, prof config.Profile, req ipc.LoginRequest) error {
	if !opts.asIs(cfg, name) {
		if err := saveProfile(cfg, name, prof); err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.Reload(rctx, name)
		cancel()
		if err != nil {
			return withHint(fmt.Errorf("the running agent did not take up profile %q from %s: %w", name, cfg.Path(), err), "see `kc-agent status` for the agent's view of the config")
		}
	}
	st, err := session.Converse(ctx, c, req, opts.presenter(), opts.timeout)
	// The agent reports `version` (run.go) in /v1/health.
	if skew := (*ipc.SkewError)(nil); errors.As(c.Skew(ctx, err, version, http.MethodPost, ipc.PathLogin), &skew) {
		return withHint(fmt.Errorf("%w, so it can not run sign-ins", skew),
			"restart it (kc-agent service restart, or stop it and run the command again)")
	}
	if err != nil {
		return err
	}
	opts.signedIn(st, prof)
	fmt.Fprintln(opts.io.Err, "kc-agent: the running agent keeps the offline token and serves the profile now")
	return nil
}

// loginHere runs the sign-in in this process (no agent runs; the caller
// holds the one-agent lock), then saves the profile.
func (opts *loginOptions) loginHere(ctx context.Context, cfg *config.Config, name string, prof config.Profile, req ipc.LoginRequest) error {
	full := cfg.WithDefaults(prof)
	source := cfg.Path()
	if opts.asIs(cfg, name) {
		source = cfg.ProfileSource(name)
	}
	lookup := func(n string) (session.Profile, error) {
		if n != name {
			return session.Profile{}, &ipc.Error{Code: ipc.CodeUnknown, Message: fmt.Sprintf("no profile %q", n)}
		}
		return session.Profile{Config: full, Source: source, System: source != "" && source == cfg.SystemPath()}, nil
	}
	svc := session.Local(lookup, opts.io.Err)
	// The sign-in ends at --timeout; the waiting a moment later.
	svc.Limits = &session.Limits{Lifetime: opts.timeout, BrowserLifetime: opts.timeout, PerWindow: 1, Window: time.Minute, Keep: time.Minute}
	defer svc.Close()
	st, err := session.Converse(ctx, svc, req, opts.presenter(), opts.timeout+5*time.Second)
	if err != nil {
		return err
	}
	opts.signedIn(st, prof)
	fmt.Fprintf(opts.io.Err, "kc-agent: offline token kept in the %s; %s\n", st.KeptIn, expiryPolicy(time.Duration(st.OfflineExpiresIn)*time.Second))
	if cur, ok := cfg.Profiles[name]; ok && cfg.ProfileSource(name) != cfg.Path() && reflect.DeepEqual(cur, prof) {
		// The administrator's profile as it is: nothing to write (and
		// the system-wide file is never written).
		return nil
	}
	if err := saveProfile(cfg, name, prof); err != nil {
		return withHint(fmt.Errorf("the login is stored, but %w", err), "check the permissions of the config directory, or set KC_AGENT_CONFIG")
	}
	return nil
}

func (opts *loginOptions) signedIn(st *ipc.LoginStatus, prof config.Profile) {
	fmt.Fprintf(opts.io.Err, "kc-agent: logged in as %s to %s (profile %q)\n", describeUser(st.Identity), realmOf(prof.Issuer), st.Profile)
}

// saveProfile writes the profile to the user's config file.
func saveProfile(cfg *config.Config, name string, prof config.Profile) error {
	if err := cfg.SetProfile(name, prof); err != nil {
		return err
	}
	if err := cfg.Save(); err != nil {
		return fmt.Errorf("the profile could not be saved to %s: %w", cfg.Path(), err)
	}
	return nil
}

// underLock runs f holding the one-agent lock, so no agent starts (and
// refreshes the login f replaces or removes) meanwhile: f is the only
// writer of the store.
func underLock(role string, f func() error) error {
	path, err := discovery.LockPath()
	if err != nil {
		return err
	}
	l, err := ipc.WaitLock(path, role, "", 10*time.Second)
	if err != nil {
		return err
	}
	defer l.Release()
	return f()
}

// profileFor is the profile as the flags change it (not yet saved).
func (opts *loginOptions) profileFor(cfg *config.Config, name string) (config.Profile, error) {
	prof, existed := cfg.Profiles[name]
	if opts.issuer != "" {
		if err := config.CheckIssuer(opts.issuer); err != nil {
			return prof, usageErr("%v", err)
		}
		if existed && prof.Issuer != opts.issuer {
			fmt.Fprintf(opts.io.Err, "kc-agent: profile %q now points at %s (was %s)\n", name, opts.issuer, prof.Issuer)
		}
		prof.Issuer = opts.issuer
	}
	if prof.Issuer == "" {
		return prof, usageErr("no issuer URL for profile %q: run `kc-agent login <issuer-url>`, e.g. kc-agent login https://sso.example.com/realms/myrealm", name)
	}
	if strings.HasPrefix(prof.Issuer, "http:") && !cfg.OwnersVisible() && !prof.UnsafeCleartextIssuer {
		return prof, &cliError{code: exitError, err: fmt.Errorf("%s: plain http sends the offline token to whoever listens on that port, and this system can not tell who does", prof.Issuer),
			hint: fmt.Sprintf("use https, or add the profile to the config file with unsafe_cleartext_issuer: true (profiles: %s: {issuer: %s, unsafe_cleartext_issuer: true}) and run login again", name, prof.Issuer)}
	}
	if opts.clientID != "" {
		prof.ClientID = opts.clientID
	}
	if len(opts.scopes) > 0 {
		prof.Scopes = opts.scopes
	}
	switch opts.storeKind {
	case "":
	case config.StoreKeychain, config.StoreFile:
		prof.Store = opts.storeKind
	default:
		return prof, usageErr("--store must be %q or %q, not %q", config.StoreKeychain, config.StoreFile, opts.storeKind)
	}
	return prof, nil
}

// asIs tells whether the flags leave the configured profile name as it is
// (so a running agent can sign it in from its own config).
func (opts *loginOptions) asIs(cfg *config.Config, name string) bool {
	p, ok := cfg.Profile(name)
	if !ok {
		return false
	}
	return (opts.issuer == "" || opts.issuer == p.Issuer) &&
		(opts.clientID == "" || opts.clientID == p.ClientID) &&
		(len(opts.scopes) == 0 || slices.Equal(opts.scopes, p.Scopes)) &&
		(opts.storeKind == "" || opts.storeKind == p.Store)
}

// runningAgent is this user's verified agent when one answers (never
// started for a login).
func runningAgent(ctx context.Context) *ipc.Client {
	c, err := ipc.NewClient()
	if err != nil {
		return nil
	}
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c.Health(hctx) != nil {
		return nil
	}
	return c
}

func describeUser(id *ipc.LoginIdentity) string {
	if id == nil {
		return "(unknown)"
	}
	s := id.PreferredUsername
	if id.Email != "" && id.Email != id.PreferredUsername {
		s += " <" + id.Email + ">"
	}
	return s
}

// realmOf names the realm of a Keycloak issuer, or the issuer itself.
func realmOf(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return issuer
	}
	if i := strings.Index(u.Path, "/realms/"); i >= 0 {
		return fmt.Sprintf("realm %q at %s", strings.Trim(u.Path[i+len("/realms/"):], "/"), u.Host)
	}
	return issuer
}

func expiryPolicy(refreshExpiresIn time.Duration) string {
	if refreshExpiresIn <= 0 {
		return "the offline session has no fixed end; it ends if unused for the realm's offline idle time (kc-agent keeps it alive) or when revoked"
	}
	return fmt.Sprintf("the offline session ends in %s (the realm's maximum); log in again then", refreshExpiresIn.Round(time.Minute))
}
