package main

import (
	"slices"
	"testing"
)

// $BROWSER is a PATH-like list: ';' on Windows, where "C:\..." holds a
// ':' that the old split on ':' cut in two.
func TestBrowserCommands(t *testing.T) {
	const u = "https://sso/x"
	exists := func(p string) bool { return p == `C:\Program Files\Mozilla Firefox\firefox.exe` }
	for _, c := range []struct {
		b    string
		sep  rune
		want [][]string
	}{
		{`C:\Tools\chrome.exe`, ';', [][]string{{`C:\Tools\chrome.exe`, u}}},
		{`C:\Program Files\Mozilla Firefox\firefox.exe;C:\Tools\chrome.exe --new-window %s`, ';',
			[][]string{{`C:\Program Files\Mozilla Firefox\firefox.exe`, u}, {`C:\Tools\chrome.exe`, "--new-window", u}}},
		{"firefox:w3m %s", ':', [][]string{{"firefox", u}, {"w3m", u}}},
		{" : ", ':', nil},
	} {
		if got := browserCommands(c.b, u, c.sep, exists); !slices.EqualFunc(got, c.want, slices.Equal) {
			t.Errorf("%q: got %q, want %q", c.b, got, c.want)
		}
	}
}
