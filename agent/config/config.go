// Package config reads, validates and writes kc-agent's YAML configuration:
// profiles (who to log in as, where) and routes (where the proxy may send
// tokens).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/kc-agent/kc-agent/internal/atomicfile"
)

// DefaultClientID is the Keycloak client kc-agent uses unless told otherwise.
const DefaultClientID = "kc-agent"

// DefaultProfile is the profile used when neither --profile nor
// KC_AGENT_PROFILE names one.
const DefaultProfile = "default"

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
	// loopback: the token then crosses the network in the clear. status and
	// doctor warn while it is set.
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

// Load reads the config file at path. A missing file is an empty config,
// so that `kc-agent login` can create it. The file steers tokens, so one
// that another user could have written is refused.
func Load(path string) (*Config, error) {
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
	return Parse(path, data)
}

// Compiled on first use: `kc-agent token` runs often and never needs them.
var yamlLine = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line (\d+): (.*)$`)
})

// Parse parses and validates config data; path is used in messages.
func Parse(path string, data []byte) (*Config, error) {
	c := &Config{path: path}
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

var profileName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
})

func (c *Config) validate() error {
	for _, name := range c.ProfileNames() {
		p := c.Profiles[name]
		fail := func(field, msg string) error {
			return &Error{File: c.path, Line: c.line("profiles", name, field), Field: "profiles." + name + "." + field, Msg: msg}
		}
		if !profileName().MatchString(name) {
			return &Error{File: c.path, Line: c.line("profiles", name), Field: "profiles." + name, Msg: "profile names are 1-64 letters, digits, '.', '_' or '-'"}
		}
		if p.Issuer == "" {
			return &Error{File: c.path, Line: c.line("profiles", name), Field: "profiles." + name + ".issuer", Msg: "missing; set it to the realm URL, e.g. https://sso.example.com/realms/myrealm"}
		}
		if err := CheckIssuer(p.Issuer); err != nil {
			return fail("issuer", err.Error())
		}
		switch p.Store {
		case "", StoreKeychain, StoreFile:
		default:
			return fail("store", fmt.Sprintf("unknown store %q; use %q or %q", p.Store, StoreKeychain, StoreFile))
		}
		for _, s := range p.Scopes {
			if s == "" || strings.ContainsAny(s, " \t\"\\") {
				return fail("scopes", fmt.Sprintf("invalid scope %q", s))
			}
		}
	}
	seen := map[string]bool{}
	origins := map[string]int{} // intercepted origin -> route index
	for i, r := range c.Routes {
		fail := func(field, msg string) error {
			return &Error{File: c.path, Line: c.routeLine(i, field), Field: fmt.Sprintf("routes[%d].%s", i, field), Msg: msg}
		}
		if !profileName().MatchString(r.Name) {
			return fail("name", "route names are 1-64 letters, digits, '.', '_' or '-'")
		}
		if seen[r.Name] {
			return fail("name", fmt.Sprintf("duplicate route %q", r.Name))
		}
		seen[r.Name] = true
		u, err := url.Parse(r.Upstream)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return fail("upstream", "must be an absolute URL like https://api.example.com[:port][/base]")
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fail("upstream", "must not carry a query, fragment or user info")
		}
		if hasDotSegment(u.Path) {
			return fail("upstream", "must not contain . or .. path segments")
		}
		if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) && !r.UnsafeCleartextUpstream {
			return fail("upstream", "plain http sends your token over the network in the clear; use https (http is allowed only for loopback upstreams, or with unsafe_cleartext_upstream: true on this route)")
		}
		if r.Intercept {
			key := OriginKey(u)
			if j, ok := origins[key]; ok {
				return fail("intercept", fmt.Sprintf("routes %q and %q both intercept %s; the forward proxy could not tell which token to send (keep intercept on one of them)", c.Routes[j].Name, r.Name, key))
			}
			origins[key] = i
		}
		if r.Listen != "" {
			if err := CheckListen(r.Listen, c.Proxy.UnsafeListenNonLoopback); err != nil {
				return fail("listen", err.Error())
			}
		}
		prof := r.Profile
		if prof == "" {
			prof = DefaultProfile
		}
		if _, ok := c.Profiles[prof]; !ok {
			return fail("profile", fmt.Sprintf("no profile %q; run `kc-agent login --profile %s <issuer-url>` first", prof, prof))
		}
	}
	if c.Proxy.Listen != "" {
		if err := CheckListen(c.Proxy.Listen, c.Proxy.UnsafeListenNonLoopback); err != nil {
			return &Error{File: c.path, Line: c.line("proxy", "listen"), Field: "proxy.listen", Msg: err.Error()}
		}
	}
	if c.Proxy.CAFile != "" {
		if err := checkPEMFile(c.Proxy.CAFile); err != nil {
			return &Error{File: c.path, Line: c.line("proxy", "ca_file"), Field: "proxy.ca_file", Msg: err.Error()}
		}
	}
	if c.Proxy.UpstreamProxy != "" {
		u, err := url.Parse(c.Proxy.UpstreamProxy)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return &Error{File: c.path, Line: c.line("proxy", "upstream_proxy"), Field: "proxy.upstream_proxy", Msg: "must be http://host:port"}
		}
	}
	return nil
}

// CheckListen accepts host:port on a loopback address (or any address with
// the explicit unsafe flag).
func CheckListen(addr string, unsafe bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if !IsLoopbackHost(host) && !unsafe {
		return fmt.Errorf("%q is not a loopback address; the proxy hands out your tokens, so it listens on 127.0.0.1 or ::1 only (proxy.unsafe_listen_non_loopback overrides)", addr)
	}
	return nil
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

// CheckIssuer validates an issuer URL as typed by a user.
func CheckIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL; expected e.g. https://sso.example.com/realms/myrealm", issuer)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("%q: scheme must be https (or http for a local test server)", issuer)
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%q: plain http is only allowed for a loopback issuer; use https", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q: an issuer URL has no query, fragment or user info", issuer)
	}
	return nil
}

// IsLoopbackHost accepts "localhost" and literal loopback addresses
// (bracketed or not, with or without a port): the one loopback check.
func IsLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// OriginKey is the exact scheme://host:port of a URL, default port made
// explicit: what a forward-proxy rule matches.
func OriginKey(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = "443"
		if scheme == "http" {
			port = "80"
		}
	}
	return scheme + "://" + strings.ToLower(strings.Trim(u.Hostname(), "[]")) + ":" + port
}

// hasDotSegment tells whether a path has a "." or ".." segment.
func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func checkPEMFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("can not read %s: %v", path, errors.Unwrap(err))
	}
	if !bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}

// line finds the line of a key path in the document (0 if unknown).
func (c *Config) line(path ...string) int {
	if c.root == nil || len(c.root.Content) == 0 {
		return 0
	}
	n := c.root.Content[0]
	line := 0
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line = n.Content[i].Line
				n = n.Content[i+1]
				found = true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

func (c *Config) routeLine(i int, field string) int {
	if c.root == nil || len(c.root.Content) == 0 {
		return 0
	}
	doc := c.root.Content[0]
	for k := 0; k+1 < len(doc.Content); k += 2 {
		if doc.Content[k].Value != "routes" || doc.Content[k+1].Kind != yaml.SequenceNode {
			continue
		}
		seq := doc.Content[k+1]
		if i >= len(seq.Content) {
			return seq.Line
		}
		item := seq.Content[i]
		for j := 0; j+1 < len(item.Content); j += 2 {
			if item.Content[j].Value == field {
				return item.Content[j].Line
			}
		}
		return item.Line
	}
	return 0
}

// SetProfile adds or replaces a profile, keeping the rest of the document
// (comments included) as it was.
func (c *Config) SetProfile(name string, p Profile) error {
	if !profileName().MatchString(name) {
		return fmt.Errorf("invalid profile name %q: use 1-64 letters, digits, '.', '_' or '-'", name)
	}
	if p.ClientID == DefaultClientID {
		p.ClientID = ""
	}
	if p.Store == StoreKeychain {
		p.Store = ""
	}
	if c.Profiles == nil {
		c.Profiles = map[string]Profile{}
	}
	c.Profiles[name] = p
	if c.root == nil || len(c.root.Content) == 0 || c.root.Content[0].Kind != yaml.MappingNode {
		c.root = nil
		return nil
	}
	var value yaml.Node
	if err := value.Encode(p); err != nil {
		return err
	}
	doc := c.root.Content[0]
	profiles := mapValue(doc, "profiles")
	if profiles == nil || profiles.Kind != yaml.MappingNode {
		profiles = &yaml.Node{Kind: yaml.MappingNode}
		setMapValue(doc, "profiles", profiles)
	}
	setMapValue(profiles, name, &value)
	return nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setMapValue(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, v)
}

// Save writes the config atomically (temp file + rename), mode 0600.
func (c *Config) Save() error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	var err error
	if c.root != nil {
		err = enc.Encode(c.root)
	} else {
		err = enc.Encode(c)
	}
	if err != nil {
		return fmt.Errorf("encoding config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("creating config directory: %w", err)
	}
	return atomicfile.Write(c.path, buf.Bytes(), 0o600)
}
