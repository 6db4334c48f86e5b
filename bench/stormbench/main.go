//go:build unix

// Command stormbench: 1000 concurrent token requests across an expiry
// boundary, against a real agent and Keycloak with rotation on. Reports how
// many refresh grants Keycloak received (target: 1) and the waits.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

func main() {
	n := flag.Int("n", 1000, "concurrent requests")
	bin := flag.String("bin", "bin/kc-agent", "kc-agent binary")
	flag.Parse()
	if err := run(*bin, *n); err != nil {
		fmt.Fprintln(os.Stderr, "stormbench: error:", err)
		os.Exit(1)
	}
}

func run(bin string, n int) error {
	ctx := context.Background()
	kc, err := keycloak.Ensure(ctx, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "stormbench: "+f+"\n", a...) })
	if err != nil {
		return err
	}
	bin, _ = filepath.Abs(bin)
	dir, _ := os.MkdirTemp("", "kcstorm")
	defer os.RemoveAll(dir)
	os.Setenv("KC_AGENT_CONFIG", filepath.Join(dir, "config.yaml"))
	os.Setenv("KC_AGENT_STATE_DIR", filepath.Join(dir, "state"))
	os.Setenv("KC_AGENT_SOCK", filepath.Join(dir, "s", "agent.sock"))
	os.Setenv("BROWSER", "") // the login below drives the form itself
	realm, user := keycloak.RealmRotation, "judy"
	if err := keycloak.LoginWithCLI(bin, kc.Issuer(realm), user, user+"-pw"); err != nil {
		return err
	}
	agent := exec.Command(bin, "run", "--log-level", "warn")
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() { agent.Process.Signal(os.Interrupt); agent.Wait() }()
	c, _ := ipc.NewClient()
	for i := 0; c.Health(ctx) != nil; i++ {
		if i > 100 {
			return fmt.Errorf("agent did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	first, err := c.Token(ctx, ipc.TokenRequest{Profile: "default"})
	if err != nil {
		return err
	}
	// Wait until the cached token has less than 9 s left (lifetime 10 s),
	// then ask for 9 s from everyone at once: the expiry boundary.
	time.Sleep(time.Until(first.ExpiresAt.Add(-8500 * time.Millisecond)))
	before, err := kc.Admin().CountEvents(ctx, realm, "REFRESH_TOKEN", user)
	if err != nil {
		return err
	}
	waits := make([]time.Duration, n)
	errs := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cl := ipc.NewClientAt(c.Path) // its own connection, like separate processes
			<-start
			t0 := time.Now()
			_, err := cl.Token(ctx, ipc.TokenRequest{Profile: "default", MinValid: 9})
			waits[i] = time.Since(t0)
			if err != nil {
				mu.Lock()
				errs++
				mu.Unlock()
			}
		}(i)
	}
	close(start)
	wg.Wait()
	after, _ := kc.Admin().CountEvents(ctx, realm, "REFRESH_TOKEN", user)
	sort.Slice(waits, func(i, j int) bool { return waits[i] < waits[j] })
	fmt.Printf("| concurrent requests | refresh grants Keycloak saw | errors | p50 wait | p99 wait | max wait |\n|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %d (target 1) | %d | %s | %s | %s |\n", n, after-before, errs, ms(waits[n/2]), ms(waits[n*99/100]), ms(waits[n-1]))
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
