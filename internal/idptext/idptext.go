// Package idptext keeps strings from the identity provider (user codes,
// error descriptions, names) from steering a terminal or a page: what the
// agent and the CLI show of them goes through Printable. The Python client
// applies the same rule; both run the vectors in
// ipc/testdata/idp_strings.json.
package idptext

import "strings"

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
