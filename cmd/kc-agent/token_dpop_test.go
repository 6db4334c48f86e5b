package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/ipc"
)

func TestCheckDPoPFlags(t *testing.T) {
	bad := map[string]tokenOptions{
		"go with --format dpop":   {format: "raw", url: "https://a/"},
		"go with --format dpop ":  {format: "json", method: "GET"},
		"not --type id":           {format: "dpop", url: "https://a/", tokenType: ipc.TokenTypeID},
		"needs --url":             {format: "dpop"},
		"url must":                {format: "dpop", url: "/relative"},
		"user name":               {format: "dpop", url: "https://u:p@a/"},
		"method must":             {format: "dpop", url: "https://a/", method: "G T"},
		"nonce must":              {format: "dpop", url: "https://a/", nonce: "a b"},
		"go with --format dpop  ": {format: "header", nonce: "n"},
	}
	for want, opts := range bad {
		err := checkDPoPFlags(&opts)
		var ce *cliError
		if !errors.As(err, &ce) || ce.code != exitUsage || !strings.Contains(err.Error(), strings.TrimSpace(want)) {
			t.Errorf("%+v: %v, want a usage error about %q", opts, err, want)
		}
	}
	opts := tokenOptions{format: "dpop", url: "https://api.example/x?y=1"}
	if err := checkDPoPFlags(&opts); err != nil || opts.method != "GET" {
		t.Fatalf("dpop with a URL: %v, method %q", err, opts.method)
	}
}

// Only a bound access token is refused; an ID token or a Bearer token goes
// on. The refusal names the profile, says why, and never holds the token.
func TestRefuseBound(t *testing.T) {
	if err := refuseBound(&ipc.TokenResponse{AccessToken: "at", TokenType: "Bearer"}, "p", "git", "h"); err != nil {
		t.Fatalf("Bearer: %v", err)
	}
	if err := refuseBound(&ipc.TokenResponse{IDToken: "id", TokenType: "Bearer"}, "p", "kubectl", "h"); err != nil {
		t.Fatalf("ID token: %v", err)
	}
	err := refuseBound(&ipc.TokenResponse{AccessToken: "secret-at", TokenType: "DPoP"}, "p", "git", boundHint("p"))
	var ce *cliError
	if !errors.As(err, &ce) || ce.code != exitError || !strings.Contains(err.Error(), `profile "p" is DPoP-bound`) ||
		!strings.Contains(err.Error(), "git can not send the proof") || !strings.Contains(ce.hint, "route") || strings.Contains(err.Error()+ce.hint, "secret-at") {
		t.Fatalf("a bound token: %v (hint %q)", err, ce.hint)
	}
}

func TestPrintDPoP(t *testing.T) {
	var b bytes.Buffer
	printDPoP(&b, &ipc.ProofResponse{AccessToken: "at", TokenType: "DPoP", Proof: "pr"})
	if b.String() != "Authorization: DPoP at\nDPoP: pr\n" {
		t.Fatalf("bound: %q", b.String())
	}
	b.Reset()
	printDPoP(&b, &ipc.ProofResponse{AccessToken: "at", TokenType: "Bearer"})
	if b.String() != "Authorization: Bearer at\n" {
		t.Fatalf("Bearer: %q", b.String())
	}
}
