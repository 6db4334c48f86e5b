// Package loopback holds the one rule for "is this host this machine":
// plain http (and a token in the clear) may go only to such a host, after
// its listener's owner is checked. Config validation, the proxy, git, the
// doctor and the Python client (_connguard.is_loopback_host) all ask it;
// testdata/hosts.json holds the vectors both languages run.
package loopback

import (
	"net"
	"strings"
)

// Host reports whether hostport (a host, a bracketed or bare IP, with or
// without a port) names loopback: "localhost" in any case, with or without
// a trailing dot; 127.0.0.0/8; ::1; and the IPv4-mapped spellings of
// 127.0.0.0/8 (::ffff:127.0.0.1 reaches 127.0.0.1).
func Host(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	// A zone (fe80::1%eth0) is never loopback; ParseIP refuses it.
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
