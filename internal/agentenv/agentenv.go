// Package agentenv is the environment an autostarted agent gets: the
// variables it needs to find the user's files, reach Keycloak and the
// keychain, and nothing else. The process that autostarts the agent (a
// notebook kernel, a CI job, a shell) often holds secrets of its own
// (JUPYTERHUB_API_TOKEN, AWS_*), and the agent would otherwise carry them
// for as long as it runs, long after their owner ended. The Python client
// applies the same list (testdata/vectors.json, run by both languages).
package agentenv

import (
	"strings"
)

// kept are the variables passed on by exact name (upper case on Windows,
// where names are case-insensitive).
var kept = map[string]bool{
	"HOME": true, "PATH": true, "USER": true, "LOGNAME": true, "SHELL": true, "TMPDIR": true,
	"LANG": true, "LANGUAGE": true, "TZ": true,
	// The session bus, when the desktop gives one: the keychain is there.
	"DBUS_SESSION_BUS_ADDRESS": true,
	// Reaching Keycloak and upstreams through the site's proxy and CAs.
	"HTTP_PROXY": true, "HTTPS_PROXY": true, "NO_PROXY": true,
	"http_proxy": true, "https_proxy": true, "no_proxy": true,
	"SSL_CERT_FILE": true, "SSL_CERT_DIR": true, "REQUESTS_CA_BUNDLE": true,
	"CURL_CA_BUNDLE": true, "NODE_EXTRA_CA_CERTS": true,
}

// keptWindows are Windows' own: where the profile, the temp directory and
// the system live. Compared in upper case.
var keptWindows = map[string]bool{
	"SYSTEMROOT": true, "WINDIR": true, "SYSTEMDRIVE": true, "COMSPEC": true, "PATHEXT": true,
	"USERPROFILE": true, "LOCALAPPDATA": true, "APPDATA": true, "PROGRAMDATA": true,
	"TEMP": true, "TMP": true, "USERNAME": true, "USERDOMAIN": true, "COMPUTERNAME": true,
	"PROGRAMFILES": true, "PROGRAMFILES(X86)": true, "NUMBER_OF_PROCESSORS": true,
	"PROCESSOR_ARCHITECTURE": true, "HOMEDRIVE": true, "HOMEPATH": true,
}

// Keep tells whether the variable name goes to an autostarted agent on
// goos ("windows", "linux", ...).
func Keep(name, goos string) bool {
	if goos == "windows" {
		up := strings.ToUpper(name)
		if keptWindows[up] || kept[up] {
			return true
		}
		name = up
	}
	if kept[name] {
		return true
	}
	for _, prefix := range []string{"LC_", "XDG_", "KC_AGENT_"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// Filter is environ (as os.Environ gives it) without what Keep drops, in
// the same order.
func Filter(environ []string, goos string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		// Windows keeps per-drive directories as "=C:=C:\..."; they are
		// no one's secret, but nothing the agent needs either.
		if ok && name != "" && Keep(name, goos) {
			out = append(out, kv)
		}
	}
	return out
}
