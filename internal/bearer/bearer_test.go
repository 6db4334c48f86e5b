package bearer

import "testing"

func TestIsToken(t *testing.T) {
	for _, s := range []string{"a", "Bearer", "DPoP", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_", "a+b/c~d==", "x="} {
		if !IsToken(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", "=", "a=b", "a b", "a'b", `a"b`, "a\nb", "a\rb", "a;b", "a$(id)", "é", "a\x00"} {
		if IsToken(s) {
			t.Errorf("%q accepted", s)
		}
	}
}
