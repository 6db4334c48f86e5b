package routepath

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/paths.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Raw, Base string
		Inside    bool
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if got := InsideRaw(c.Raw, c.Base); got != c.Inside {
			t.Errorf("InsideRaw(%q, %q) = %v, want %v", c.Raw, c.Base, got, c.Inside)
		}
	}
}

// Whatever InsideRaw accepts has no way up: no dot segment survives any
// number of further decodes and no backslash.
func FuzzInsideRaw(f *testing.F) {
	for _, s := range []string{"/repo/x", "/repo/..;/x", "/repo/%252e%252e/x", "/repo/a%5cb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !InsideRaw(raw, "/repo") {
			return
		}
		p := raw
		for range 3 {
			for _, seg := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' || r == ';' }) {
				if seg == ".." {
					t.Fatalf("%q was accepted but holds a way up", raw)
				}
			}
			p = strings.NewReplacer("%2e", ".", "%2E", ".", "%2f", "/", "%2F", "/", "%5c", "\\", "%5C", "\\", "%25", "%").Replace(p)
		}
	})
}
