package bearer

import (
	"encoding/json"
	"os"
	"testing"
)

// The vectors the Python client's tests read too.
func TestIsToken(t *testing.T) {
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Tokens    []string `json:"tokens"`
		NotTokens []string `json:"not_tokens"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) < 5 || len(v.NotTokens) < 10 {
		t.Fatalf("only %d/%d vectors", len(v.Tokens), len(v.NotTokens))
	}
	for _, s := range v.Tokens {
		if !IsToken(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range v.NotTokens {
		if IsToken(s) {
			t.Errorf("%q accepted", s)
		}
	}
}

// The vectors the Python client's tests read too (its errors scrub the same).
func TestScrub(t *testing.T) {
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Scrub [][2]string `json:"scrub"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Scrub) < 5 {
		t.Fatalf("only %d vectors", len(v.Scrub))
	}
	for i, c := range v.Scrub {
		if Scrub(c[0]) != c[1] {
			t.Errorf("vector %d: not scrubbed as expected", i) // (no token in a failure message)
		}
	}
}
