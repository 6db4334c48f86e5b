package oidc

import (
	"github.com/kc-agent/kc-agent/internal/idptext"

	"fmt"
	"net/url"

	"github.com/kc-agent/kc-agent/agent/config"
)

// Strings from the identity provider (user codes, links, error
// descriptions, names) are data: a terminal or a notebook shows them
// only through idptext.Printable, and a link is shown or opened only when
// CheckLink passes. The Python client applies the same rule to what it
// shows; both run the vectors in ipc/testdata/idp_strings.json.

// CheckLink accepts a link the identity provider gives the user to open
// (field names it: verification_uri, authorization_endpoint): https, or
// plain http only on the issuer's own loopback origin (a test server, a
// port-forward). Anything else (javascript:, data:, a file, plain http
// elsewhere, a link carrying control characters or a user name) fails the
// sign-in: kc-agent neither shows nor opens it.
func CheckLink(issuer, field, link string) error {
	u, err := url.Parse(link)
	ok := err == nil && idptext.Printable(link) == link && u.Host != "" && u.User == nil && u.Opaque == ""
	if ok && u.Scheme != "https" {
		iss, ierr := url.Parse(issuer)
		ok = ierr == nil && u.Scheme == "http" && iss.Scheme == "http" &&
			config.IsLoopbackHost(iss.Host) && config.OriginKey(u) == config.OriginKey(iss)
	}
	if ok {
		return nil
	}
	shown := []rune(idptext.Printable(link))
	if len(shown) > 80 {
		shown = append(shown[:80], []rune("...")...)
	}
	return &Error{Kind: KindConfig,
		Msg: fmt.Sprintf("the identity provider sent a %s that kc-agent will not show or open (%q): only https:// links, or http:// on the issuer's own loopback address, are accepted; the sign-in was stopped",
			field, string(shown)),
		Hint: "the identity provider may be misconfigured, or not the one you expect: check the issuer URL, and ask its administrator about the realm's frontend URL"}
}
