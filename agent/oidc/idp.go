package oidc

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/kc-agent/kc-agent/agent/config"
)

// Strings from the identity provider (user codes, links, error
// descriptions, names) are data: a terminal or a notebook shows them
// only through Printable, and a link is shown or opened only when
// CheckLink passes. The Python client applies the same rule to what it
// shows; both run the vectors in ipc/testdata/idp_strings.json.

// Printable is s as text that can not steer a terminal or a page's
// layout: invalid UTF-8 becomes U+FFFD, and control characters (C0, DEL,
// C1: escape sequences, carriage returns, newlines that fake a line of
// ours), the marks that reorder text (bidi embeddings, overrides,
// isolates, directional marks) and the line and paragraph separators are
// removed.
func Printable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexFunc(s, stripped) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if stripped(r) {
			return -1
		}
		return r
	}, s)
}

func stripped(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, // directional marks
		r >= 0x202a && r <= 0x202e, // embeddings and overrides
		r >= 0x2066 && r <= 0x2069, // isolates
		r == 0x2028, r == 0x2029:   // line and paragraph separators
		return true
	}
	return false
}

// CheckLink accepts a link the identity provider gives the user to open
// (field names it: verification_uri, authorization_endpoint): https, or
// plain http only on the issuer's own loopback origin (a test server, a
// port-forward). Anything else (javascript:, data:, a file, plain http
// elsewhere, a link carrying control characters or a user name) fails the
// sign-in: kc-agent neither shows nor opens it.
func CheckLink(issuer, field, link string) error {
	u, err := url.Parse(link)
	ok := err == nil && Printable(link) == link && u.Host != "" && u.User == nil && u.Opaque == ""
	if ok && u.Scheme != "https" {
		iss, ierr := url.Parse(issuer)
		ok = ierr == nil && u.Scheme == "http" && iss.Scheme == "http" &&
			config.IsLoopbackHost(iss.Host) && config.OriginKey(u) == config.OriginKey(iss)
	}
	if ok {
		return nil
	}
	shown := []rune(Printable(link))
	if len(shown) > 80 {
		shown = append(shown[:80], []rune("...")...)
	}
	return &Error{Kind: KindConfig,
		Msg: fmt.Sprintf("the identity provider sent a %s that kc-agent will not show or open (%q): only https:// links, or http:// on the issuer's own loopback address, are accepted; the sign-in was stopped",
			field, string(shown)),
		Hint: "the identity provider may be misconfigured, or not the one you expect: check the issuer URL, and ask its administrator about the realm's frontend URL"}
}
