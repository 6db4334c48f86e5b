// Package config reads, validates and writes kc-agent's YAML configuration:
// profiles (who to log in as, where) and routes (where the proxy may send
// tokens).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/kc-agent/kc-agent/internal/filetrust"
	"github.com/kc-agent/kc-agent/internal/peer"
	"gopkg.in/yaml.v3"
)

// DefaultClientID is the Keycloak client kc-agent uses unless told otherwise.
const DefaultClientID = "kc-agent"

// Store kinds.
const (
	StoreKeychain = "keychain"
	StoreFile     = "file"
)

// DPoP modes of a profile (Profile.DPoP).
const (
	// DPoPOff sends no proofs: the offline token is a bearer secret.
	DPoPOff = "off"
	// DPoPOn binds each login to a key the agent holds (RFC 9449): every
	// token-endpoint call carries a proof, and a copy of the offline
	// token can't be refreshed without the key.
	DPoPOn = "on"
)

// Where a profile's DPoP keys are made (Profile.DPoPKey).
const (
	// DPoPKeyAuto makes them in the TPM when it opens and makes P-256
	// keys, in software otherwise.
	DPoPKeyAuto = "auto"
	// DPoPKeyTPM makes them in the TPM, or fails the login.
	DPoPKeyTPM = "tpm"
	// DPoPKeySoftware makes them in software, kept in the key store.
	DPoPKeySoftware = "software"
)

// Profile is one login: an issuer, a client and the scopes asked for.
type Profile struct {
	Issuer   string   `yaml:"issuer"`
	ClientID string   `yaml:"client_id,omitempty"`
	Scopes   []string `yaml:"scopes,omitempty"`
	Store    string   `yaml:"store,omitempty"`
	// UnsafeCleartextIssuer lets the offline token go to an http://
	// loopback issuer whose listener's owner can not be named (macOS; a
	// socket without an owning process, as under Wine) or is root: it then
	// goes to whoever holds the port. Never to another known user. The
	// same meaning as a route's UnsafeCleartextUpstream (cleartext.Check).
	UnsafeCleartextIssuer bool `yaml:"unsafe_cleartext_issuer,omitempty"`
	// AllowForeignEndpoints accepts a discovery document whose token,
	// device, revocation, logout or userinfo endpoint lies outside the
	// issuer's scheme://host:port. Only for providers that really do this.
	AllowForeignEndpoints bool `yaml:"allow_foreign_endpoints,omitempty"`
	// ClientName is what Keycloak's consent page calls the client (its
	// Name in the realm, where one is set; else the page shows the client
	// id). A sign-in's block tells the user to allow access for it. Only
	// shown, never sent.
	ClientName string `yaml:"client_name,omitempty"`
	// DPoP is DPoPOff (the default, "") or DPoPOn.
	DPoP string `yaml:"dpop,omitempty"`
	// DPoPKey is where new logins' keys are made: DPoPKeyAuto (the
	// default, ""), DPoPKeyTPM or DPoPKeySoftware.
	DPoPKey string `yaml:"dpop_key,omitempty"`
}

// DPoPEnabled says whether the profile binds its logins to a key.
func (p Profile) DPoPEnabled() bool { return p.DPoP == DPoPOn }

// Route sends requests to an upstream API with a token injected.
type Route struct {
	Name      string   `yaml:"name"`
	Upstream  string   `yaml:"upstream"`
	Profile   string   `yaml:"profile,omitempty"`
	Scopes    []string `yaml:"scopes,omitempty"`
	Listen    string   `yaml:"listen,omitempty"`
	Intercept bool     `yaml:"intercept,omitempty"`
	// AllowBrowser lets a browser open the route's URLs as pages (top-level
	// navigations typed or bookmarked by the user). Off by default: every
	// route shares the proxy's one browser origin. What is served is
	// sandboxed either way, and a page's own requests are always refused.
	AllowBrowser bool `yaml:"allow_browser,omitempty"`
	// UnsafeCleartextUpstream allows an http:// upstream that is not on
	// loopback: the token then crosses the network in the clear. For a
	// loopback http:// upstream it means what UnsafeCleartextIssuer means:
	// the token may go where the listener's owner can not be named (macOS,
	// Wine) or is root, never to another known user. git never gets a
	// token for such an upstream: `kc-agent git setup` sends git through
	// the route. status and doctor warn while it is used.
	UnsafeCleartextUpstream bool `yaml:"unsafe_cleartext_upstream,omitempty"`
	// GitUsername is the user name `kc-agent git-credential` gives git
	// beside the token (default: the one in the URL, else oauth2).
	GitUsername string `yaml:"git_username,omitempty"`
}

// DefaultProxyListen is where the proxy listens unless told otherwise.
const DefaultProxyListen = "127.0.0.1:8421"

// Proxy holds the settings of the localhost proxy.
type Proxy struct {
	// Listen is a loopback host:port (default 127.0.0.1:8421), or auto:
	// an address of the user's own, from their uid (ListenAuto).
	Listen string `yaml:"listen,omitempty"`
	// CAFile is an extra PEM bundle trusted for upstreams (besides the
	// system roots); there is no way to skip verification.
	CAFile string `yaml:"ca_file,omitempty"`
	// UpstreamProxy (http://host:port) carries CONNECT tunnels for hosts
	// without a rule, e.g. a corporate proxy.
	UpstreamProxy string `yaml:"upstream_proxy,omitempty"`
	// UnsafeListenNonLoopback allows a non-loopback listen address.
	UnsafeListenNonLoopback bool `yaml:"unsafe_listen_non_loopback,omitempty"`
}

// Config is the whole file.
type Config struct {
	Profiles map[string]Profile `yaml:"profiles,omitempty"`
	Routes   []Route            `yaml:"routes,omitempty"`
	Proxy    Proxy              `yaml:"proxy,omitempty"`
	Agent    Agent              `yaml:"agent,omitempty"`
	// Store is how the profiles that don't say keep their offline tokens
	// (default keychain): an administrator's system file sets "file" on a
	// host without a keychain, for every user's profiles at once.
	Store string `yaml:"store,omitempty"`

	path string
	root *yaml.Node
	// Merged over a system-wide file: own is the user's file as read (what
	// SetProfile and Save change), sources where each profile and route
	// came from ("profile/<name>", "route/<name>").
	own     *Config
	sources map[string]string
	// deferRefs leaves the profiles routes name to be checked after the
	// merge: a system route may name a profile the user's file defines.
	deferRefs bool
	// ownersVisible is whether c was checked as on a system that shows
	// who owns a TCP socket (OwnersVisible).
	ownersVisible bool
	// systemErr is why the system-wide file was ignored, if it was;
	// leftOut the system routes naming a profile no file defines.
	systemErr error
	leftOut   []error
}

// Path is the file this config was read from (or will be written to).
func (c *Config) Path() string { return c.path }

// Error is a validation error that points at a place in the file.
type Error struct {
	File  string
	Line  int
	Field string
	Msg   string
	err   error
}

func (e *Error) Unwrap() error { return e.err }

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", loc, e.Msg)
}

// Profile returns the named profile with defaults applied (the file's
// store first).
func (c *Config) Profile(name string) (Profile, bool) {
	p, ok := c.Profiles[name]
	if !ok {
		return Profile{}, false
	}
	return c.WithDefaults(p), true
}

// WithDefaults fills in what p leaves out: the store this config names
// for all its profiles (the system file's, unless the user's sets one),
// then the built-in defaults. A profile about to be added gets them too.
func (c *Config) WithDefaults(p Profile) Profile {
	if p.Store == "" {
		p.Store = c.Store
	}
	return p.WithDefaults()
}

// ProfileNames lists the profiles, sorted.
func (c *Config) ProfileNames() []string {
	names := make([]string, 0, len(c.Profiles))
	for n := range c.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// WithDefaults fills in the client id and store a profile leaves out.
func (p Profile) WithDefaults() Profile {
	if p.ClientID == "" {
		p.ClientID = DefaultClientID
	}
	if p.Store == "" {
		p.Store = StoreKeychain
	}
	return p
}

// ErrEmpty marks a config file that exists but holds nothing: an editor
// caught mid-save, or a truncated write. It is refused like any invalid
// file, so a running agent keeps its last good config; `login` may start
// it afresh.
var ErrEmpty = errors.New("the config file is empty")

// Empty is a config with nothing in it, to be saved at path.
func Empty(path string) *Config {
	return &Config{path: path, Profiles: map[string]Profile{}, ownersVisible: peer.Visible}
}

// Load reads the config file at path over the system-wide file
// (SystemFilePath), which it overrides profile by profile and route by
// route; the profiles routes name are checked after the merge. A missing
// file is an empty config, so that `kc-agent login` can create it. The
// files steer tokens, so one that another user could have written is
// refused. A system file that is untrusted, invalid or at odds with the
// user's is ignored (SystemError says why): the user's own profiles keep
// serving.
func Load(path string) (*Config, error) {
	sys, sysErr := loadSystem(SystemFilePath())
	user, err := loadUser(path)
	if err != nil {
		return nil, err
	}
	if sys != nil {
		m, userErr, mergeErr := merge(sys, user)
		if userErr != nil {
			return nil, userErr
		}
		if mergeErr == nil {
			return m, nil
		}
		sysErr = mergeErr
	}
	if err := user.checkRefs(); err != nil {
		var ce *Error
		if sysErr != nil && errors.As(err, &ce) {
			// The route may have meant a profile of the ignored file.
			ce.Msg += fmt.Sprintf(" (the system-wide config is ignored: %v)", sysErr)
		}
		return nil, err
	}
	user.deferRefs, user.systemErr = false, sysErr
	return user, nil
}

// SystemError is why the system-wide file was ignored, or nil.
func (c *Config) SystemError() error { return c.systemErr }

// loadUser reads the user's file, opened once and checked as opened: it,
// its directory and every directory above must be the user's (or root's)
// and not writable by others.
func loadUser(path string) (*Config, error) {
	data, err := filetrust.ReadFile(path, filetrust.User)
	if errors.Is(err, os.ErrNotExist) {
		if err := CheckPrivate(filepath.Dir(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return Empty(path), nil
	}
	var te *filetrust.Error
	if errors.As(err, &te) {
		return nil, privateError(path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if err := CheckPrivate(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: path, Msg: ErrEmpty.Error() + "; the last good config stays live (write the whole file, or run `kc-agent login` to start afresh)", err: ErrEmpty}
	}
	return parse(path, data, true, peer.Visible)
}

// Compiled on first use: `kc-agent token` runs often and never needs them.
var yamlLine = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line (\d+): (.*)$`)
})

// Parse parses and validates config data; path is used in messages.
// Plain http to loopback is judged as this system allows (peer.Visible).
func Parse(path string, data []byte) (*Config, error) { return parse(path, data, false, peer.Visible) }

// ParseWhere is Parse as on a system that shows who owns a TCP socket
// (ownersVisible) or not: where it does not, plain http to loopback needs
// its unsafe_ opt-in (tests play the other system with it).
func ParseWhere(path string, data []byte, ownersVisible bool) (*Config, error) {
	return parse(path, data, false, ownersVisible)
}

// OwnersVisible is whether c was checked as on a system that shows who
// owns a TCP socket (peer.Visible, unless parsed with ParseWhere). Where
// it was not, plain http to loopback passed only with its unsafe_ opt-in,
// and what sends tokens there says so (the proxy's and status's warnings).
func (c *Config) OwnersVisible() bool { return c.ownersVisible }

// parse is Parse that, with deferRefs, leaves the profiles routes name to
// be checked after the merge (checkRefs).
func parse(path string, data []byte, deferRefs, ownersVisible bool) (*Config, error) {
	c := &Config{path: path, deferRefs: deferRefs, ownersVisible: ownersVisible}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(path, err)
	}
	if root.Kind != 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return nil, yamlError(path, err)
		}
		c.root = &root
	}
	if c.Profiles == nil {
		c.Profiles = map[string]Profile{}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	switch c.Store {
	case "", StoreKeychain, StoreFile:
	default:
		return nil, &Error{File: path, Line: c.line("store"), Field: "store", Msg: fmt.Sprintf("unknown store %q; use %q or %q", c.Store, StoreKeychain, StoreFile)}
	}
	if !deferRefs {
		if err := c.checkRefs(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkRefs makes sure every route names a profile c defines.
func (c *Config) checkRefs() error {
	for i, r := range c.Routes {
		if _, ok := c.Profiles[r.ProfileName()]; !ok {
			return c.refError(i, r)
		}
	}
	return nil
}

func (c *Config) refError(i int, r Route) error {
	return &Error{File: c.path, Line: c.routeLine(i, "profile"), Field: fmt.Sprintf("routes[%d].profile", i),
		Msg: fmt.Sprintf("no profile %q; run `kc-agent login --profile %s <issuer-url>` first", r.ProfileName(), r.ProfileName())}
}

func yamlError(path string, err error) error {
	msg := err.Error()
	if m := yamlLine().FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscan(m[1], &line)
		return &Error{File: path, Line: line, Msg: strings.TrimSpace(m[2])}
	}
	return &Error{File: path, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// ProxyListen is the proxy's address with the default applied and auto
// resolved to this user's address.
func (c *Config) ProxyListen() string {
	if c.Proxy.Listen == ListenAuto {
		return autoListen()
	}
	if c.Proxy.Listen != "" {
		return c.Proxy.Listen
	}
	return DefaultProxyListen
}

// ProfileName is the profile a route uses.
func (r Route) ProfileName() string {
	if r.Profile == "" {
		return DefaultProfile
	}
	return r.Profile
}
