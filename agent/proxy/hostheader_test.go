package proxy

import (
	"net/url"
	"testing"
)

// The Host header drops the scheme's default port and an empty one, as
// the proof's htu does; any other port stays.
func TestHostHeader(t *testing.T) {
	for raw, want := range map[string]string{
		"https://api.example:443/v1": "api.example",
		"https://api.example:/v1":    "api.example",
		"http://api.example:80/":     "api.example",
		"https://api.example:80/":    "api.example:80",
		"http://api.example:443/":    "api.example:443",
		"https://api.example:8443/":  "api.example:8443",
		"https://api.example/":       "api.example",
		"https://[::1]:443/":         "[::1]",
		"http://[::1]:8080/":         "[::1]:8080",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostHeader(u); got != want {
			t.Errorf("hostHeader(%s) = %q, want %q", raw, got, want)
		}
	}
}
