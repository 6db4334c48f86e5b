package idptext

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// The vectors the Python client runs too (test_printable_vectors).
func TestPrintableVectors(t *testing.T) {
	data, err := os.ReadFile("../../ipc/testdata/idp_strings.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Printable []struct{ Name, In, Want string }
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Printable) < 10 {
		t.Fatalf("only %d vectors", len(v.Printable))
	}
	for _, c := range v.Printable {
		if got := Printable(c.In); got != c.Want {
			t.Errorf("%s: Printable(%q) = %q, want %q", c.Name, c.In, got, c.Want)
		}
	}
	// Invalid UTF-8 can not travel in JSON; Go sees it from the wire.
	if got := Printable("a\xffb\x1b"); got != "a\uFFFDb" {
		t.Errorf("invalid UTF-8: %q", got)
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"WXYZ-ABCD", "\x1b[31mred", "a\u202eb", "\xff\xfe", "ok\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := Printable(s)
		if !utf8.ValidString(p) || strings.IndexFunc(p, stripped) >= 0 || Printable(p) != p {
			t.Fatalf("Printable(%q) = %q", s, p)
		}
	})
}
