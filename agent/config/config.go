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

	"gopkg.in/yaml.v3"
)

// DefaultClientID is the Keycloak client kc-agent uses unless told otherwise.
const DefaultClientID = "kc-agent"

// Store kinds.
const (
	StoreKeychain = "keychain"
	StoreFile     = "file"
)

// Profile is one login: an issuer, a client and the scopes asked for.
type Profile struct {
	Issuer   string   `yaml:"issuer"`
	ClientID string   `yaml:"client_id,omitempty"`
	Scopes   []string `yaml:"scopes,omitempty"`
	Store    string   `yaml:"store,omitempty"`
	// UnsafeCleartextIssuer allows an http:// loopback issuer where the
	// system can not show who listens on a port (macOS): the offline token
	// then goes to whoever holds the port. Linux checks the owner instead.
	UnsafeCleartextIssuer bool `yaml:"unsafe_cleartext_issuer,omitempty"`
	// AllowForeignEndpoints accepts a discovery document whose token,
	// device, revocation, logout or userinfo endpoint lies outside the
	// issuer's scheme://host:port. Only for providers that really do this.
	AllowForeignEndpoints bool `yaml:"allow_foreign_endpoints,omitempty"`
}

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
	// loopback: the token then crosses the network in the clear. Where the
	// system can not show who listens on a port (macOS), a loopback http://
	// upstream needs it too. status and doctor warn while it is used.
	UnsafeCleartextUpstream bool `yaml:"unsafe_cleartext_upstream,omitempty"`
	// GitUsername is the user name `kc-agent git-credential` gives git
	// beside the token (default: the one in the URL, else oauth2).
	GitUsername string `yaml:"git_username,omitempty"`
}

// DefaultProxyListen is where the proxy listens unless told otherwise.
const DefaultProxyListen = "127.0.0.1:8421"

// Proxy holds the settings of the localhost proxy.
type Proxy struct {
	// Listen is a loopback host:port (default 127.0.0.1:8421).
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

	path string
	root *yaml.Node
	// Merged over a system-wide file: own is the user's file as read (what
	// SetProfile and Save change), sources where each profile and route
	// came from ("profile/<name>", "route/<name>").
	own     *Config
	sources map[string]string
	// known are profiles another file defines, which routes may name.
	known map[string]Profile
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

// Profile returns the named profile with defaults applied.
func (c *Config) Profile(name string) (Profile, bool) {
	p, ok := c.Profiles[name]
	if !ok {
		return Profile{}, false
	}
	return p.WithDefaults(), true
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
func Empty(path string) *Config { return &Config{path: path, Profiles: map[string]Profile{}} }

// Load reads the config file at path over the system-wide file
// (SystemFilePath), which it overrides profile by profile and route by
// route. A missing file is an empty config, so that `kc-agent login` can
// create it. The files steer tokens, so one that another user could have
// written is refused.
func Load(path string) (*Config, error) {
	sys, err := loadSystem(SystemFilePath())
	if err != nil {
		return nil, err
	}
	var known map[string]Profile
	if sys != nil {
		known = sys.Profiles
	}
	user, err := loadUser(path, known)
	if err != nil || sys == nil {
		return user, err
	}
	return merge(sys, user)
}

func loadUser(path string, known map[string]Profile) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := CheckPrivate(filepath.Dir(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return Empty(path), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if err := CheckPrivate(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if err := CheckPrivate(path); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: path, Msg: ErrEmpty.Error() + "; the last good config stays live (write the whole file, or run `kc-agent login` to start afresh)", err: ErrEmpty}
	}
	return parse(path, data, known)
}

// Compiled on first use: `kc-agent token` runs often and never needs them.
var yamlLine = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line (\d+): (.*)$`)
})

// Parse parses and validates config data; path is used in messages.
func Parse(path string, data []byte) (*Config, error) { return parse(path, data, nil) }

// parse is Parse where routes may also name the profiles in known.
func parse(path string, data []byte, known map[string]Profile) (*Config, error) {
	c := &Config{path: path, known: known}
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
	return c, nil
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

// ProxyListen is the proxy's address with the default applied.
func (c *Config) ProxyListen() string {
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
