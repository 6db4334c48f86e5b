// Package bearer says what a bearer token may look like: RFC 6750's
// b64token. kc-agent prints tokens into shells (`eval "$(kc-agent token
// --format env)"`), header lines (`--format header | curl -H @-`) and git's
// line protocol, so a token from the agent (and so from the identity
// provider) with a quote, a space or a line break is refused, never
// printed. The ipc client and the Python client use this one rule.
// Scrub cuts anything shaped like a JWT out of a message, as the Python
// client's errors do. testdata/vectors.json holds the cases both this
// package and the Python client (same rules) are tested on.
package bearer

import (
	"regexp"
	"strings"
	"sync"
)

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

// jwt is the Python client's pattern (kc_agent_client/_errors.py), so both
// cut the same text. Compiled on first use: `kc-agent token` starts in a
// couple of milliseconds and only needs it to print an error.
var jwt = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(\.[A-Za-z0-9_-]*)?`)
})

// Scrub replaces anything shaped like a JWT in s with "[token]". kc-agent
// never puts a token in a message; this keeps it so when a peer (an agent,
// an identity provider) does.
func Scrub(s string) string {
	if !strings.Contains(s, "eyJ") {
		return s
	}
	return jwt().ReplaceAllLiteralString(s, "[token]")
}
