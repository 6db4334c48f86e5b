// Package routepath holds the one rule for "does this path stay under a
// route's base path": the proxy asks it of every request, config
// validation of every upstream, git-credential of every path git names.
// testdata/paths.json holds its vectors.
package routepath

import (
	"net/url"
	"strings"
)

// Unsafe tells whether a path, decoded once (as net/http's r.URL.Path
// is), could leave a base path on some server. %2e%2e and ..%2f arrive
// decoded as dot segments. Refused as well: a dot segment before a ";"
// (Tomcat and Spring read "..;" as ".."), a backslash (a slash to some
// servers), control characters (%00 cuts paths short), and escapes left
// after the first decode (%252e is ".." to a server that decodes twice).
func Unsafe(p string) bool {
	if strings.ContainsRune(p, '\\') {
		return true
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return true
		}
	}
	lower := strings.ToLower(p)
	for _, esc := range []string{"%2e", "%2f", "%5c", "%25", "%00"} {
		if strings.Contains(lower, esc) {
			return true
		}
	}
	for _, seg := range strings.Split(p, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// Under tells whether path is at or under base. Ask Unsafe first: Under
// compares strings and knows nothing of dot segments.
func Under(path, base string) bool {
	base = strings.TrimSuffix(base, "/")
	return base == "" || path == base || strings.HasPrefix(path, base+"/")
}

// InsideRaw tells whether a path as it appears in a URL (escaped) stays
// under base (decoded, as url.URL.Path): decoded once, then Unsafe and
// Under, as the proxy sees it.
func InsideRaw(raw, base string) bool {
	p, err := url.PathUnescape(raw)
	if err != nil || Unsafe(p) || Unsafe(base) {
		return false
	}
	return Under(p, base)
}
