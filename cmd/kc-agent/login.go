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
	"github.com/kc-agent/kc-agent/agent/oidc"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/ipc"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

type loginOptions struct {
	io        *IOStreams
	issuer    string
	profile   string
	clientID  string
	scopes    []string
	device    bool
	noBrowser bool
	storeKind string
	timeout   time.Duration
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
	if opts.asIs(cfg, name) {
		// The agent is the one writer of the store: while one runs, it
		// signs the profile in.
		if c := runningAgent(ctx); c != nil {
			err := opts.loginViaAgent(ctx, c, cfg, name)
			var ae *ipc.Error
			if !errors.As(err, &ae) || ae.Code != ipc.CodeUnknown {
				return err
			}
			// The agent has not read this profile yet (its config is
			// older, or invalid): sign in here, as without an agent.
			fmt.Fprintf(opts.io.Err, "kc-agent: the agent does not know profile %q yet; signing in here\n", name)
		}
	}
	prof, err := opts.profileFor(cfg, name)
	if err != nil {
		return err
	}
	full := cfg.WithDefaults(prof)
	st, err := store.ForProfile(full, opts.io.Err)
	if err != nil {
		return err
	}
	// Find out before the user signs in whether the token can be kept.
	previous, err := st.Get(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		var ue *store.UnavailableError
		if errors.As(err, &ue) {
			return withHint(fmt.Errorf("no keychain to keep the login in: %w", err), ue.Hint())
		}
		previous = store.Record{}
	}
	client, err := oidc.ForProfile(ctx, full)
	if err != nil {
		return err
	}
	if key, err := tokens.NewLoginKey(full); err != nil {
		return err
	} else if key != nil {
		client = client.WithDPoP(key) // dpop: on: the login is bound to key
	}
	res, err := opts.signIn(ctx, client, full)
	if err != nil {
		return err
	}
	if err := keepLogin(ctx, client, st, cfg, name, prof, res); err != nil {
		return err
	}
	// The old login (if any) is replaced; end its session so it does not
	// linger at Keycloak. Best effort: the new login already works.
	if previous.RefreshToken != "" && previous.Issuer == full.Issuer {
		_ = client.Logout(ctx, previous.RefreshToken)
	}
	notifyAgent(ctx, name)
	fmt.Fprintf(opts.io.Err, "kc-agent: logged in as %s to %s (profile %q)\n", describeUser(res.Identity), realmOf(full.Issuer), name)
	fmt.Fprintf(opts.io.Err, "kc-agent: offline token kept in the %s; %s\n", st.Describe(), expiryPolicy(res.Token.RefreshExpiresIn))
	return nil
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
	if strings.HasPrefix(prof.Issuer, "http:") && !config.OwnersVisible && !prof.UnsafeCleartextIssuer {
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

// signIn runs the browser flow, or the device flow when asked for or when
// there is no browser here.
func (opts *loginOptions) signIn(ctx context.Context, client *oidc.Client, full config.Profile) (*oidc.LoginResult, error) {
	lo := oidc.LoginOptions{Scopes: full.Scopes, Status: opts.io.Err, Timeout: opts.timeout}
	openURL := openURLHook
	if openURL == nil {
		openURL = openBrowser
	}
	useDevice := opts.device
	if !useDevice && !opts.noBrowser && !browserAvailable() {
		fmt.Fprintln(opts.io.Err, "kc-agent: no browser available here (no display, or SSH without $BROWSER): using the device flow")
		useDevice = true
	}
	if useDevice {
		lo.ShowDeviceCode = func(uri, code, complete string) { showDeviceCode(opts.io.Err, uri, code, complete) }
		if browserAvailable() || openURLHook != nil {
			lo.OpenURL = openURL
		}
		return client.LoginDevice(ctx, lo)
	}
	if !opts.noBrowser {
		lo.OpenURL = openURL
	}
	return client.LoginBrowser(ctx, lo)
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

// loginViaAgent has the agent run the sign-in and shows it as a login of
// its own would: the URL, the code and the QR code.
func (opts *loginOptions) loginViaAgent(ctx context.Context, c *ipc.Client, cfg *config.Config, name string) error {
	useDevice := opts.device
	if !useDevice && !opts.noBrowser && !browserAvailable() {
		fmt.Fprintln(opts.io.Err, "kc-agent: no browser available here (no display, or SSH without $BROWSER): using the device flow")
		useDevice = true
	}
	flow := ipc.FlowBrowser
	if useDevice {
		flow = ipc.FlowDevice
	}
	st, err := c.StartLogin(ctx, ipc.LoginRequest{Profile: name, Flow: flow})
	// The agent reports `version` (run.go) in /v1/health.
	if skew := (*ipc.SkewError)(nil); errors.As(c.Skew(ctx, err, version, http.MethodPost, ipc.PathLogin), &skew) {
		return withHint(fmt.Errorf("%w, so it can not run sign-ins", skew),
			"restart it (kc-agent service restart, or stop it and run the command again)")
	}
	if err != nil {
		return err
	}
	if st.Joined {
		fmt.Fprintf(opts.io.Err, "kc-agent: a sign-in for profile %q is already running; joining it\n", name)
	}
	openURL := openURLHook
	if openURL == nil {
		openURL = openBrowser
	}
	if st.Flow == ipc.FlowDevice {
		showDeviceCode(opts.io.Err, st.VerificationURI, st.UserCode, st.VerificationURIComplete)
		if (browserAvailable() || openURLHook != nil) && st.VerificationURIComplete != "" {
			_ = openSignIn(ctx, c, st.ID, openURL)
		}
	} else {
		switch {
		case opts.noBrowser:
			fmt.Fprintf(opts.io.Err, "kc-agent: open this URL in a browser on this machine to sign in:\n\n  %s\n\n", st.AuthorizationURL)
		case openSignIn(ctx, c, st.ID, openURL) != nil:
			fmt.Fprintf(opts.io.Err, "kc-agent: could not open a browser; open this URL yourself:\n\n  %s\n\n", st.AuthorizationURL)
		default:
			fmt.Fprintf(opts.io.Err, "kc-agent: opened your browser to sign in; if it did not appear, open:\n\n  %s\n\n", st.AuthorizationURL)
		}
	}
	deadline := time.Now().Add(opts.timeout)
	for st.State == ipc.LoginPending {
		left := time.Until(deadline)
		if left <= 0 {
			return withHint(fmt.Errorf("gave up waiting for the sign-in after %s", opts.timeout), "it stays open until it expires: `kc-agent status` shows it")
		}
		next, err := c.LoginStatus(ctx, st.ID, min(left, 25*time.Second))
		if err != nil {
			if ctx.Err() != nil && !st.Joined {
				// Ctrl-C: the sign-in this command started ends with it.
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				_ = c.CancelLogin(cctx, st.ID)
				cancel()
				return errors.New("login cancelled")
			}
			return err
		}
		st = next
	}
	switch st.State {
	case ipc.LoginDone:
	case ipc.LoginExpired:
		return withHint(errors.New("the sign-in expired before it was approved"), "run `kc-agent login` again and approve it sooner")
	case ipc.LoginDenied:
		return withHint(errors.New("the sign-in was denied"), "run `kc-agent login` again and accept the request")
	default:
		return withHint(fmt.Errorf("the sign-in %s: %s", st.State, st.Error), st.Hint)
	}
	full, _ := cfg.Profile(name)
	who := oidc.Identity{Username: st.Identity.PreferredUsername, Subject: st.Identity.Subject, Email: st.Identity.Email}
	fmt.Fprintf(opts.io.Err, "kc-agent: logged in as %s to %s (profile %q)\n", describeUser(who), realmOf(full.Issuer), name)
	fmt.Fprintln(opts.io.Err, "kc-agent: the running agent keeps the offline token and serves the profile now")
	return nil
}

// keepLogin stores the new offline token (under the one-agent lock) and
// saves the profile.
func keepLogin(ctx context.Context, client *oidc.Client, st store.Store, cfg *config.Config, name string, prof config.Profile, res *oidc.LoginResult) error {
	full := cfg.WithDefaults(prof)
	rec := store.Record{
		RefreshToken: res.Token.RefreshToken,
		Issuer:       full.Issuer,
		ClientID:     full.ClientID,
		Scopes:       full.Scopes,
		Subject:      res.Identity.Subject,
		Username:     res.Identity.Username,
		SavedAt:      time.Now().UTC().Round(time.Second),
	}
	release := lockStoreWrite("login")
	err := tokens.KeepLoginKey(ctx, name, full, client.DPoPKey(), &rec)
	if err == nil {
		err = st.Put(ctx, name, rec)
	}
	release()
	if err != nil {
		// End the new session rather than leave it orphaned at Keycloak.
		_ = client.Logout(context.WithoutCancel(ctx), rec.RefreshToken)
		return fmt.Errorf("signed in, but could not store the offline token: %w", err)
	}
	if cur, ok := cfg.Profiles[name]; ok && cfg.ProfileSource(name) != cfg.Path() && reflect.DeepEqual(cur, prof) {
		// The administrator's profile as it is: nothing to write (and
		// the system-wide file is never written).
		return nil
	}
	if err := cfg.SetProfile(name, prof); err != nil {
		return err
	}
	if err := cfg.Save(); err != nil {
		return withHint(fmt.Errorf("the login is stored, but the profile could not be saved to %s: %w", cfg.Path(), err),
			"check the permissions of the config directory, or set KC_AGENT_CONFIG")
	}
	return nil
}

func describeUser(id oidc.Identity) string {
	s := id.Username
	if id.Email != "" && id.Email != id.Username {
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

// lockStoreWrite takes the one-agent lock around a write to the store when
// no agent runs, so an agent starting at that moment can not refresh the
// login being replaced. A running agent holds the lock itself; it notices
// the new token (it re-reads the store before every refresh) and is told
// by notifyAgent.
func lockStoreWrite(role string) (release func()) {
	path, err := discovery.LockPath()
	if err != nil {
		return func() {}
	}
	l, err := ipc.WaitLock(path, role, "", 10*time.Second)
	if err != nil {
		return func() {}
	}
	return l.Release
}

// notifyAgent tells a running agent to pick up the new state of a profile.
// No agent is fine: it reads the store when it starts.
func notifyAgent(ctx context.Context, profile string) {
	c, err := ipc.NewClient()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = c.Reload(ctx, profile)
}
