package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"unicode"

	"github.com/kc-agent/kc-agent/internal/loopback"
	"github.com/kc-agent/kc-agent/internal/routepath"
)

var profileName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
})

// ValidProfileName tells whether name can name a profile (1-64 letters,
// digits, '.', '_' or '-'): the one rule, for the file and for requests.
func ValidProfileName(name string) bool { return profileName().MatchString(name) }

func (c *Config) validate() error {
	for _, name := range c.ProfileNames() {
		if err := c.validateProfile(name, c.Profiles[name]); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	origins := map[string]int{} // intercepted origin -> route index
	for i, r := range c.Routes {
		if err := c.validateRoute(i, r, seen, origins); err != nil {
			return err
		}
	}
	if err := c.validateAgent(); err != nil {
		return err
	}
	return c.validateProxy()
}

func (c *Config) validateProfile(name string, p Profile) error {
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
	if u, _ := url.Parse(p.Issuer); u.Scheme == "http" && !c.ownersVisible && !p.UnsafeCleartextIssuer {
		return fail("issuer", "plain http to a loopback issuer sends the offline token to whoever listens on that port, and this system can not tell who does; use https, or set unsafe_cleartext_issuer: true on this profile")
	}
	switch p.Store {
	case "", StoreKeychain, StoreFile:
	default:
		return fail("store", fmt.Sprintf("unknown store %q; use %q or %q", p.Store, StoreKeychain, StoreFile))
	}
	switch p.DPoP {
	case "", DPoPOff, DPoPOn:
	default:
		return fail("dpop", fmt.Sprintf("unknown dpop mode %q; use %q or %q", p.DPoP, DPoPOff, DPoPOn))
	}
	switch p.DPoPKey {
	case "", DPoPKeyAuto, DPoPKeyTPM, DPoPKeySoftware:
	default:
		return fail("dpop_key", fmt.Sprintf("unknown dpop_key %q; use %q, %q or %q", p.DPoPKey, DPoPKeyAuto, DPoPKeyTPM, DPoPKeySoftware))
	}
	for _, s := range p.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			return fail("scopes", fmt.Sprintf("invalid scope %q", s))
		}
	}
	return nil
}

// validateRoute checks route i; seen holds the names so far, origins the
// origins intercepted so far (by route index).
func (c *Config) validateRoute(i int, r Route, seen map[string]bool, origins map[string]int) error {
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
	if routepath.Unsafe(u.Path) {
		return fail("upstream", "must not contain . or .. path segments, backslashes, control characters or escaped dots and slashes")
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) && !r.UnsafeCleartextUpstream {
		return fail("upstream", "plain http sends your token over the network in the clear; use https (http is allowed only for loopback upstreams, or with unsafe_cleartext_upstream: true on this route)")
	}
	if u.Scheme == "http" && IsLoopbackHost(u.Hostname()) && !c.ownersVisible && !r.UnsafeCleartextUpstream {
		return fail("upstream", "plain http to a loopback port sends your token to whoever listens there, and this system can not tell who does; use https, or set unsafe_cleartext_upstream: true on this route")
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
		// A fixed address serves one listener: the main one or one route.
		// (Port 0 picks a new port for each.)
		if _, port, _ := net.SplitHostPort(r.Listen); port != "0" {
			if r.Listen == c.ProxyListen() {
				return fail("listen", fmt.Sprintf("%s is the proxy's main address (proxy.listen); give the route another port, or drop listen to serve it at /%s on the main one", r.Listen, r.Name))
			}
			for _, o := range c.Routes[:i] {
				if o.Listen == r.Listen {
					return fail("listen", fmt.Sprintf("route %q listens on %s already; give each route its own port", o.Name, r.Listen))
				}
			}
		}
	}
	// git reads the helper's answer line by line: a control character in
	// the user name could add lines of its own.
	if strings.ContainsFunc(r.GitUsername, unicode.IsControl) {
		return fail("git_username", "must not contain control characters (line breaks, tabs)")
	}
	return nil
}

func (c *Config) validateProxy() error {
	fail := func(field, msg string) error {
		return &Error{File: c.path, Line: c.line("proxy", field), Field: "proxy." + field, Msg: msg}
	}
	if c.Proxy.Listen != "" {
		if err := CheckListen(c.ProxyListen(), c.Proxy.UnsafeListenNonLoopback); err != nil {
			return fail("listen", err.Error())
		}
	}
	if c.Proxy.CAFile != "" {
		if err := checkPEMFile(c.Proxy.CAFile); err != nil {
			return fail("ca_file", err.Error())
		}
	}
	if c.Proxy.UpstreamProxy != "" {
		u, err := url.Parse(c.Proxy.UpstreamProxy)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return fail("upstream_proxy", "must be http://host:port")
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

// IsLoopbackHost is loopback.Host, the one loopback rule (kept here for
// the callers that know it by this name).
func IsLoopbackHost(hostport string) bool { return loopback.Host(hostport) }

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

func checkPEMFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("can not read %s: %v", path, errors.Unwrap(err))
	}
	// Whoever can write it can add a CA and read route tokens.
	if err := CheckTrusted(path); err != nil {
		return err
	}
	if !bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")) {
		return fmt.Errorf("%s holds no PEM certificate", path)
	}
	return nil
}
