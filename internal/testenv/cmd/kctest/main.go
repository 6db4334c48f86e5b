//go:build unix

// Command kctest starts, shows and stops the shared test Keycloak, for the
// Makefile, the demo and CI.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kctest start|stop|url")
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
