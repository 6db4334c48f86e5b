package config

import (
	"errors"
	"testing"
)

// git_username goes into git's line protocol: control characters are
// refused with the line, plain names accepted.
func TestGitUsername(t *testing.T) {
	base := "profiles:\n  default:\n    issuer: https://x/realms/a\nroutes:\n  - name: git\n    upstream: https://git.example.com\n    git_username: "
	c, err := Parse("c.yaml", []byte(base+"x-token-auth\n"))
	if err != nil || c.Routes[0].GitUsername != "x-token-auth" {
		t.Fatalf("plain name: %v", err)
	}
	_, err = Parse("c.yaml", []byte(base+"\"a\\npassword=evil\"\n"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Field != "routes[0].git_username" || ce.Line != 7 {
		t.Fatalf("line break: %v", err)
	}
}
