//go:build unix

// Command kctest starts, shows and stops the shared test Keycloak, for the
// Makefile, the demo and CI.
package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

func main() {
	if len(os.Args) == 5 && os.Args[1] == "signin" {
		// kctest signin USER PASSWORD URL: a stand-in browser for the demo
		// ($BROWSER), filling Keycloak's login page over HTTP.
		res, err := keycloak.NewFormBrowser(os.Args[2], os.Args[3]).Visit(context.Background(), os.Args[4])
		if err != nil {
			fmt.Fprintln(os.Stderr, "kctest: signin:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "kctest: browser finished at %s (HTTP %d)\n", res.URL, res.Status)
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "api" {
		// kctest api ISSUER: the demo's API, checking tokens at Keycloak;
		// prints its base URL, serves until killed.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "kctest: api:", err)
			os.Exit(1)
		}
		fmt.Printf("http://%s\n", ln.Addr())
		os.Stdout.Close()
		if err := keycloak.ServeUserinfoAPI(context.Background(), ln, os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "kctest: api:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kctest start|stop|url|signin USER PASSWORD URL|api ISSUER")
		os.Exit(2)
	}
	logf := func(f string, a ...any) { fmt.Fprintf(os.Stderr, "kctest: "+f+"\n", a...) }
	switch os.Args[1] {
	case "start", "url":
		s, err := keycloak.Ensure(context.Background(), logf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kctest: error:", err)
			os.Exit(1)
		}
		fmt.Println(s.BaseURL)
	case "stop":
		if err := keycloak.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "kctest: error:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: kctest start|stop|url")
		os.Exit(2)
	}
}
