// Package bearer says what a bearer token may look like: RFC 6750's
// b64token. kc-agent prints tokens into shells (`eval "$(kc-agent token
// --format env)"`), header lines (`--format header | curl -H @-`) and git's
// line protocol, so a token from the agent (and so from the identity
// provider) with a quote, a space or a line break is refused, never
// printed. The ipc client and the Python client use this one rule; it
// imports nothing. testdata/vectors.json holds the
// cases both this package and the Python client (same rule) are tested on.
package bearer

// IsToken reports whether s is a non-empty b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func IsToken(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
