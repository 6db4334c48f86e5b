package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/loopback"
	"github.com/kc-agent/kc-agent/internal/routepath"
	"github.com/kc-agent/kc-agent/ipc"
)

// DefaultGitUsername is the user name given to git beside the token when
// neither the route nor the URL names one; servers that take a token as
// the password ignore it.
const DefaultGitUsername = "oauth2"

// gitInputMax bounds what the helper reads from git.
const gitInputMax = 64 << 10

type gitCredentialOptions struct {
	minValid    time.Duration
	noAutostart bool
}

func newGitCredentialCmd(streams *IOStreams) *cobra.Command {
	opts := &gitCredentialOptions{}
	cmd := &cobra.Command{
		Use:   "git-credential get|store|erase",
		Short: "A git credential helper that answers with a token, for routed hosts only",
		Long: `A git credential helper (git runs it; see kc-agent git setup).

get answers only for URLs whose origin and path fall under a route's upstream
(the longest match wins), with a token of the route's profile and scopes.
For any other URL it prints nothing, so a token never goes to a host no
route names. With git 2.46 or later it answers a Bearer credential
(authtype); older git gets the route's git_username (default oauth2, or the
user in the URL) and the token as the password.

store is ignored (the token is short-lived). erase (git calls it when the
server refused the token) has the agent refresh now, so the next get brings
a new token.

It never prompts and never opens a browser: when no token can be had, it
prints nothing on stdout and the reason on stderr.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return gitCredentialRun(cmd.Context(), streams, args[0], opts)
		},
	}
	cmd.Flags().DurationVar(&opts.minValid, "min-valid", 30*time.Second, "least validity of the token handed to git: one git command uses it for all its requests")
	cmd.Flags().BoolVar(&opts.noAutostart, "no-autostart", false, "fail instead of starting an agent")
	return cmd
}

// gitRequest is what git says about the URL it needs a credential for.
type gitRequest struct {
	Protocol     string
	Host         string // host[:port], as git sends it
	Path         string // without a leading slash; "" unless credential.useHttpPath
	Username     string
	Capabilities map[string]bool
}

// readGitRequest parses git's key=value lines up to a blank line or EOF.
// Unknown keys are ignored, as the protocol asks.
func readGitRequest(r io.Reader) (gitRequest, error) {
	req := gitRequest{Capabilities: map[string]bool{}}
	// One byte more than allowed: input cut at the limit (a host name cut
	// short, say) is refused, never parsed.
	lr := &io.LimitedReader{R: r, N: gitInputMax + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 4096), gitInputMax+1)
	var rawURL string
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "protocol":
			req.Protocol = v
		case "host":
			req.Host = v
		case "path":
			req.Path = v
		case "username":
			req.Username = v
		case "url":
			rawURL = v
		case "capability[]":
			req.Capabilities[v] = true
		}
	}
	if err := sc.Err(); err != nil {
		return req, fmt.Errorf("reading git's request: %w", err)
	}
	if lr.N <= 0 {
		return req, fmt.Errorf("git's request is longer than %d bytes", gitInputMax)
	}
	// url= stands for the fields it holds, unless git also sent them.
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil {
			return req, fmt.Errorf("git sent an invalid url: %w", err)
		}
		if req.Protocol == "" {
			req.Protocol = u.Scheme
		}
		if req.Host == "" {
			req.Host = u.Host
		}
		if req.Path == "" {
			req.Path = strings.TrimPrefix(u.Path, "/")
		}
		if req.Username == "" && u.User != nil {
			req.Username = u.User.Username()
		}
	}
	return req, nil
}

// matchRoute finds the route whose upstream covers the URL git asks about:
// same origin (config.OriginKey), and a path under the upstream's path by
// the proxy's own rule (routepath: no dot segments, "..;", escaped dots or
// slashes, backslashes); the longest path wins. Plain http counts for
// loopback hosts (git-credential then refuses, pointing at git setup), or
// for a route that says unsafe_cleartext_upstream.
func matchRoute(routes []config.Route, req gitRequest) (config.Route, bool) {
	scheme := strings.ToLower(req.Protocol)
	if (scheme != "https" && scheme != "http") || req.Host == "" {
		return config.Route{}, false
	}
	remote := scheme == "http" && !loopback.Host(req.Host)
	reqPath := "/" + strings.TrimPrefix(req.Path, "/")
	origin := config.OriginKey(&url.URL{Scheme: scheme, Host: req.Host})
	best, bestLen := -1, -1
	for i, r := range routes {
		u, err := url.Parse(r.Upstream)
		if err != nil || config.OriginKey(u) != origin || u.User != nil || remote && !r.UnsafeCleartextUpstream {
			continue
		}
		if !routepath.InsideRaw(reqPath, u.Path) {
			continue
		}
		if n := len(strings.TrimSuffix(u.Path, "/")); n > bestLen {
			best, bestLen = i, n
		}
	}
	if best < 0 {
		return config.Route{}, false
	}
	return routes[best], true
}

// cleartextLoopback tells whether git would send a credential for this
// request in the clear to a loopback port: on a connection kc-agent never
// sees, which git may even have opened to another user's listener before
// it asked (a 401 with keep-alive, then the listener closed).
func cleartextLoopback(req gitRequest) bool {
	return strings.EqualFold(req.Protocol, "http") && loopback.Host(req.Host)
}

// gitAnswer is the helper's answer to get, in the protocol's lines.
func gitAnswer(req gitRequest, r config.Route, tok *ipc.TokenResponse) ([]byte, error) {
	token := tok.Token()
	if token == "" || strings.ContainsAny(token, "\n\r\x00") {
		return nil, errors.New("the agent's token can not be passed to git")
	}
	var b bytes.Buffer
	if req.Capabilities["authtype"] {
		// git 2.46+: a Bearer credential it must not store.
		b.WriteString("capability[]=authtype\n")
		b.WriteString("authtype=Bearer\n")
		b.WriteString("credential=" + token + "\n")
		b.WriteString("ephemeral=1\n")
		return b.Bytes(), nil
	}
	user := r.GitUsername
	if user == "" {
		user = req.Username
	}
	if user == "" {
		user = DefaultGitUsername
	}
	if strings.ContainsAny(user, "\n\r\x00") {
		return nil, &cliError{code: exitError, err: fmt.Errorf("route %q: git_username holds a line break", r.Name),
			hint: "fix git_username in the config file"}
	}
	b.WriteString("username=" + user + "\n")
	b.WriteString("password=" + token + "\n")
	// git 2.40+ drops the password at this time; older git ignores it.
	b.WriteString("password_expiry_utc=" + strconv.FormatInt(tok.ExpiresAt.Unix(), 10) + "\n")
	return b.Bytes(), nil
}

func gitCredentialRun(ctx context.Context, streams *IOStreams, op string, opts *gitCredentialOptions) error {
	if op != "get" && op != "erase" {
		// store, and operations a future git may add: nothing to do. Read
		// the input so git never blocks writing it.
		io.Copy(io.Discard, io.LimitReader(streams.In, gitInputMax))
		return nil
	}
	if opts.minValid < 0 || opts.minValid > time.Hour {
		return usageErr("--min-valid must be between 0 and 1h")
	}
	req, err := readGitRequest(streams.In)
	if err != nil {
		return err
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	route, ok := matchRoute(cfg.Routes, req)
	if !ok {
		return nil // not a place a token may go: say nothing at all
	}
	// git waits for us: an agent that does not answer within 15 s will not.
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tokReq := ipc.TokenRequest{Profile: route.ProfileName(), Scopes: route.Scopes}
	if op == "erase" {
		// The server refused the token: refresh now, so the next get (a
		// new git process) finds a token issued after the refusal.
		tokReq.ForceRefresh = true
		_, err := fetchToken(ctx, streams.Err, tokReq, opts.noAutostart)
		return err
	}
	if cleartextLoopback(req) {
		u := "http://" + req.Host + "/" + strings.TrimPrefix(req.Path, "/")
		return &cliError{code: exitError,
			err:  fmt.Errorf("no token for git at %s: git would send it in the clear on a connection kc-agent can not check (another user of this machine may hold it)", u),
			hint: fmt.Sprintf("run `kc-agent git setup %s` once: git then goes through the agent's route %q, which checks every connection and adds the token itself", u, route.Name)}
	}
	tokReq.MinValid = opts.minValid.Seconds()
	tok, err := fetchToken(ctx, streams.Err, tokReq, opts.noAutostart)
	if err != nil {
		return err
	}
	if err := refuseBound(tok, route.ProfileName(), "git", boundHint(route.ProfileName())); err != nil {
		return err
	}
	out, err := gitAnswer(req, route, tok)
	if err != nil {
		return err
	}
	_, err = streams.Out.Write(out)
	return err
}

type gitSetupOptions struct {
	command  string
	minValid time.Duration
	print    bool
}

func newGitCmd(streams *IOStreams) *cobra.Command {
	git := &cobra.Command{
		Use:   "git",
		Short: "Set git up to use kc-agent for routed hosts",
		Args:  usageArgs(cobra.NoArgs),
	}
	opts := &gitSetupOptions{}
	setup := &cobra.Command{
		Use:   "setup <url>",
		Short: "Make git get its credential for <url> from kc-agent",
		Long: `Set, in your global git config, kc-agent as the only credential helper for
<url> (which must fall under a route's upstream):

  credential.<url>.helper      ""   (drops storage helpers such as osxkeychain
                                     or store for this URL: the token is
                                     short-lived and must not be kept)
  credential.<url>.helper      !kc-agent git-credential
  credential.<url>.useHttpPath true (the path picks the route)

With --print, show the git config commands instead of running them.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return gitSetupRun(cmd.Context(), streams, args[0], opts)
		},
	}
	setup.Flags().StringVar(&opts.command, "command", "kc-agent", "the kc-agent command git runs (a name on PATH or an absolute path)")
	setup.Flags().DurationVar(&opts.minValid, "min-valid", 0, "pass --min-valid to git-credential (0: its default; lower it for realms whose tokens live under a minute)")
	setup.Flags().BoolVar(&opts.print, "print", false, "print the git config commands instead of running them")
	git.AddCommand(setup)
	return git
}

func gitSetupRun(ctx context.Context, streams *IOStreams, rawURL string, opts *gitSetupOptions) error {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return usageErr("%q is not a URL like https://git.example.com/org", rawURL)
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	req := gitRequest{Protocol: u.Scheme, Host: u.Host, Path: u.EscapedPath()}
	route, ok := matchRoute(cfg.Routes, req)
	if !ok {
		return &cliError{code: exitError, err: fmt.Errorf("no route in %s covers %s, so kc-agent would give git no token there", cfg.Path(), rawURL),
			hint: fmt.Sprintf("add a route with upstream: %s://%s (see the README's git section), then run this again", u.Scheme, u.Host)}
	}
	if cleartextLoopback(req) {
		return gitSetupThroughRoute(ctx, streams, cfg, u, route, opts)
	}
	key := "credential." + strings.TrimSuffix(rawURL, "/")
	helper := "!" + shellQuote(opts.command) + " git-credential"
	if opts.minValid > 0 {
		helper += " --min-valid " + opts.minValid.String()
	}
	steps := [][]string{
		{"config", "--global", "--replace-all", key + ".helper", ""},
		{"config", "--global", "--add", key + ".helper", helper},
		{"config", "--global", key + ".useHttpPath", "true"},
	}
	if done, err := runGitConfig(ctx, streams, steps, rawURL, opts.print); done || err != nil {
		return err
	}
	fmt.Fprintf(streams.Err, "kc-agent: git now asks kc-agent for %s (helpers configured before this are not used there)\n", rawURL)
	warnLaterHelpers(ctx, streams.Err, helper)
	return nil
}

// runGitConfig runs the git config steps, or with print shows them
// (done: nothing more to do).
func runGitConfig(ctx context.Context, streams *IOStreams, steps [][]string, rawURL string, print bool) (done bool, err error) {
	if print {
		for _, s := range steps {
			quoted := make([]string, len(s))
			for i, a := range s {
				quoted[i] = shellQuote(a)
			}
			fmt.Fprintln(streams.Out, "git "+strings.Join(quoted, " "))
		}
		return true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, "git", s...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return true, withHint(fmt.Errorf("git %s: %v: %s", strings.Join(s[:3], " "), err, strings.TrimSpace(stderr.String())),
				"run the commands of `kc-agent git setup --print "+rawURL+"` yourself")
		}
	}
	return false, nil
}

// warnLaterHelpers names the credential helpers git runs after kc-agent's
// (configured later in the global file, or in the system or a repository's
// file): git hands them the token with `store`, and a storage helper would
// keep it on disk.
func warnLaterHelpers(ctx context.Context, w io.Writer, ours string) {
	out, err := exec.CommandContext(ctx, "git", "config", "--show-origin", "--get-regexp", `^credential\..*helper$`).Output()
	if err != nil {
		return
	}
	seen := false
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		origin, rest, _ := strings.Cut(line, "\t")
		_, value, _ := strings.Cut(rest, " ")
		switch {
		case value == ours:
			seen = true
		case seen && value != "":
			fmt.Fprintf(w, "kc-agent: warning: git also runs the credential helper %q (%s) after kc-agent's, and would hand it the token to store; remove it or limit it to other URLs (credential.<url>.helper)\n", value, strings.TrimPrefix(origin, "file:"))
		}
	}
}

// shellQuote quotes s for sh when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
