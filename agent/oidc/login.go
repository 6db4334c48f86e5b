package oidc

import (
	"github.com/kc-agent/kc-agent/internal/idptext"

	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kc-agent/kc-agent/internal/sameuser"
)

// Identity is who logged in, from the verified ID token.
type Identity struct {
	Subject  string
	Username string
	Email    string
	Name     string
}

// LoginResult is a successful login: an offline token and who it belongs to.
type LoginResult struct {
	Token    *Token
	Identity Identity
}

// LoginOptions control the interactive part of a login.
type LoginOptions struct {
	Scopes []string // extra scopes beyond openid offline_access
	// OpenURL opens a URL for the user (a browser). Nil: the URL is only printed.
	OpenURL func(url string) error
	// Status receives progress lines for the user (stderr).
	Status io.Writer
	// Timeout bounds the whole login; 0 means 5 minutes.
	Timeout time.Duration
	// ShowDeviceCode prints the device flow's instructions (and QR code).
	ShowDeviceCode func(verificationURI, userCode, complete string)
	// Tick is how often the waiting line is refreshed; 0 means 1s.
	Tick time.Duration
}

func (o *LoginOptions) status() io.Writer {
	if o.Status == nil {
		return io.Discard
	}
	return o.Status
}

func (o *LoginOptions) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 5 * time.Minute
	}
	return o.Timeout
}

func loginScopes(extra []string) []string {
	scopes := []string{"openid", "offline_access"}
	for _, s := range extra {
		if s != "openid" && s != "offline_access" {
			scopes = append(scopes, s)
		}
	}
	return scopes
}

func randomString() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

type callbackResult struct {
	code string
	err  error
}

// BrowserLogin is an authorization code flow with PKCE (S256) waiting for
// its loopback redirect (RFC 8252): the agent and `kc-agent login` start
// it, show AuthURL, and Wait.
type BrowserLogin struct {
	// AuthURL is where the user signs in.
	AuthURL string
	// Expiry is when the login gives up waiting.
	Expiry time.Time

	c        *Client
	cfg      *oauth2.Config
	verifier string
	nonce    string
	ln       net.Listener
	srv      *http.Server
	results  chan callbackResult
}

// StartBrowser opens the loopback listener and makes the authorization URL;
// the login ends timeout from now (0: 5 minutes). Close it when done.
func (c *Client) StartBrowser(scopes []string, timeout time.Duration) (*BrowserLogin, error) {
	if c.meta.AuthURL == "" {
		return nil, &Error{Kind: KindConfig, Msg: "the issuer announces no authorization endpoint"}
	}
	if err := CheckLink(c.Issuer, "authorization_endpoint", c.meta.AuthURL); err != nil {
		return nil, err
	}
	// Only this user's processes may deliver the redirect (the proxy's
	// owner check): a neighbour who learnt the state can not hand the
	// agent a code of their own. A refused connection consumes nothing.
	ln, err := sameuser.ListenLoopback(slog.Default(), "sign-in callback listener refused a connection from another user", nil)
	if err != nil {
		return nil, fmt.Errorf("listening for the login callback on 127.0.0.1: %w", err)
	}
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", ln.Addr().(*net.TCPAddr).Port)
	state := randomString()
	b := &BrowserLogin{c: c, verifier: oauth2.GenerateVerifier(), nonce: randomString(), ln: ln,
		results: make(chan callbackResult, 1), Expiry: time.Now().Add((&LoginOptions{Timeout: timeout}).timeout())}
	b.cfg = c.oauth2Config(loginScopes(scopes), redirect)
	b.AuthURL = b.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(b.verifier), oauth2.SetAuthURLParam("nonce", b.nonce))
	b.srv = &http.Server{Handler: c.callbackHandler(state, b.results), ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	return b, nil
}

// Close stops the loopback listener.
func (b *BrowserLogin) Close() { b.srv.Close() }

// Wait waits for the redirect, exchanges the code and verifies the tokens.
func (b *BrowserLogin) Wait(ctx context.Context) (*LoginResult, error) {
	return b.wait(ctx, LoginOptions{})
}

func (b *BrowserLogin) wait(ctx context.Context, opts LoginOptions) (*LoginResult, error) {
	ctx, cancel := context.WithDeadline(ctx, b.Expiry)
	defer cancel()
	code, err := waitCallback(ctx, b.results, b.Expiry, opts, opts.status())
	if err != nil {
		return nil, err
	}
	tok, err := b.cfg.Exchange(b.c.ctx(ctx), code, oauth2.VerifierOption(b.verifier))
	if err != nil {
		return nil, fromRetrieveError(err)
	}
	return b.c.finishLogin(ctx, fromOAuth2(tok, time.Now()), b.nonce)
}

// LoginBrowser runs the authorization code flow with PKCE (S256) and a
// loopback redirect (RFC 8252).
func (c *Client) LoginBrowser(ctx context.Context, opts LoginOptions) (*LoginResult, error) {
	b, err := c.StartBrowser(opts.Scopes, opts.timeout())
	if err != nil {
		return nil, err
	}
	defer b.Close()
	authURL := b.AuthURL
	out := opts.status()
	if opts.OpenURL != nil {
		// The URL holds the state, PKCE challenge and nonce: the opener
		// gets a launcher link, never the URL itself.
		if closeLink, err := openLink(opts.OpenURL, authURL, b.Expiry); err != nil {
			fmt.Fprintf(out, "kc-agent: could not open a browser (%v); open this URL yourself:\n\n  %s\n\n", err, authURL)
		} else {
			defer closeLink()
			fmt.Fprintf(out, "kc-agent: opened your browser to sign in; if it did not appear, open:\n\n  %s\n\n", authURL)
		}
	} else {
		fmt.Fprintf(out, "kc-agent: open this URL in a browser on this machine to sign in:\n\n  %s\n\n", authURL)
	}
	return b.wait(ctx, opts)
}

func waitCallback(ctx context.Context, results <-chan callbackResult, deadline time.Time, opts LoginOptions, out io.Writer) (string, error) {
	tick := opts.Tick
	if tick <= 0 {
		tick = time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	last := ""
	for {
		select {
		case r := <-results:
			fmt.Fprint(out, clearLine(last))
			return r.code, r.err
		case <-ctx.Done():
			fmt.Fprint(out, clearLine(last))
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return "", &Error{Kind: KindDenied, Msg: "timed out waiting for the browser login", Hint: "run `kc-agent login` again (or `--device` to sign in from another device)"}
			}
			return "", &Error{Kind: KindDenied, Msg: "login cancelled"}
		case <-t.C:
			left := time.Until(deadline).Round(time.Second)
			line := fmt.Sprintf("kc-agent: waiting for the browser login (%s left, Ctrl-C to cancel)", left)
			fmt.Fprint(out, "\r"+line)
			last = line
		}
	}
}

func clearLine(last string) string {
	if last == "" {
		return ""
	}
	return "\r" + strings.Repeat(" ", len(last)) + "\r"
}

const pageDone = `<!doctype html><meta charset="utf-8"><title>kc-agent</title>
<body style="font-family:sans-serif;margin:4em"><h1 id="kc-agent-done">Signed in</h1><p>kc-agent has your login. You can close this tab and go back to the terminal.</p></body>`

const pageFailed = `<!doctype html><meta charset="utf-8"><title>kc-agent</title>
<body style="font-family:sans-serif;margin:4em"><h1>Sign-in failed</h1><p>%s</p><p>Go back to the terminal for details.</p></body>`

func (c *Client) callbackHandler(state string, results chan<- callbackResult) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fail := func(status int, e error) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(status)
			fmt.Fprintf(w, pageFailed, html.EscapeString(e.Error()))
			select {
			case results <- callbackResult{err: e}:
			default:
			}
		}
		// A stray request (favicon, a reload, another page) must not end
		// the login: only a callback carrying our state counts.
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			http.Error(w, "unknown login state; start again with kc-agent login", http.StatusBadRequest)
			return
		}
		if iss := q.Get("iss"); iss != "" && iss != c.Issuer {
			fail(http.StatusBadRequest, &Error{Kind: KindConfig, Msg: fmt.Sprintf("the login answer came from issuer %q, not %q", iss, c.Issuer)})
			return
		}
		if code := q.Get("error"); code != "" {
			fail(http.StatusForbidden, classifyTokenError(0, code, q.Get("error_description")))
			return
		}
		code := q.Get("code")
		if code == "" {
			fail(http.StatusBadRequest, errors.New("the login answer carried no code"))
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, pageDone)
		select {
		case results <- callbackResult{code: code}:
		default:
		}
	})
	return mux
}

// finishLogin verifies the ID token and makes sure the refresh token is an
// offline token before anyone stores it.
func (c *Client) finishLogin(ctx context.Context, tok *Token, nonce string) (*LoginResult, error) {
	if tok.IDToken == "" {
		return nil, &Error{Kind: KindConfig, Msg: "the provider returned no ID token", Hint: "make sure the client allows the openid scope"}
	}
	verifier := c.provider.Verifier(&gooidc.Config{ClientID: c.ClientID})
	idt, err := verifier.Verify(c.ctx(ctx), tok.IDToken)
	if err != nil {
		return nil, &Error{Kind: KindConfig, Msg: "the ID token did not verify", Err: err}
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, &Error{Kind: KindConfig, Msg: "the ID token carries the wrong nonce (a replayed or mixed-up login); try again"}
	}
	var claims struct {
		PreferredUsername string `json:"preferred_username"`
		Email             string `json:"email"`
		Name              string `json:"name"`
	}
	_ = idt.Claims(&claims)
	id := Identity{Subject: idptext.Printable(idt.Subject), Username: idptext.Printable(claims.PreferredUsername), Email: idptext.Printable(claims.Email), Name: idptext.Printable(claims.Name)}
	if id.Username == "" {
		id.Username = id.Subject
	}
	if err := checkOffline(tok); err != nil {
		return nil, err
	}
	return &LoginResult{Token: tok, Identity: id}, nil
}

// checkOffline refuses refresh tokens that are not offline tokens. Keycloak
// marks them with typ "Offline"; the granted scope must include
// offline_access either way.
func checkOffline(tok *Token) error {
	notOffline := &Error{Kind: KindConfig,
		Msg:  "the provider did not issue an offline token, so kc-agent would lose the login when the browser session ends; nothing was stored",
		Hint: "ask the Keycloak admin to give the user the offline_access role and the client the offline_access client scope"}
	if tok.RefreshToken == "" {
		notOffline.Msg = "the provider returned no refresh token; nothing was stored"
		return notOffline
	}
	if tok.Scope != "" && !hasScope(tok.Scope, "offline_access") {
		return notOffline
	}
	if typ := jwtType(tok.RefreshToken); typ != "" && !strings.EqualFold(typ, "Offline") {
		return notOffline
	}
	return nil
}

func hasScope(scopes, want string) bool {
	for _, s := range strings.Fields(scopes) {
		if s == want {
			return true
		}
	}
	return false
}

// jwtType reads the typ claim of a JWT-shaped token without trusting it;
// opaque tokens give "".
func jwtType(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Typ string `json:"typ"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.Typ
}
