package loopback

import (
	"encoding/json"
	"os"
	"testing"
)

// The vectors the Python client's is_loopback_host runs too.
func TestHostVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/hosts.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Host     string `json:"host"`
		Loopback bool   `json:"loopback"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := Host(c.Host); got != c.Loopback {
			t.Errorf("Host(%q) = %v, want %v", c.Host, got, c.Loopback)
		}
	}
}

func FuzzHost(f *testing.F) {
	for _, s := range []string{"localhost.", "[::ffff:127.0.0.1]:80", "127.0.0.1:0", "LOCALHOST"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Host(s) && Host("["+s+"]x") {
			t.Errorf("%q and a mangled form are both loopback", s)
		}
	})
}
