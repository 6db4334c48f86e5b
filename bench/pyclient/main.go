//go:build unix

// Command pyclient measures the Python client's get_token() in-process
// against a warm agent, side by side with whole-process `kc-agent token`,
// a whole Python process that calls get_token() once, and oidc-agent's
// oidc-token, all in the same run against the same Keycloak, user and
// client; and KcAgentAuth's per-request cost with a DPoP-bound login
// against a Bearer one (dpop.go). Run it through bench/run.sh.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/bench/internal/oidcagent"
	"github.com/kc-agent/kc-agent/bench/internal/timing"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

func main() {
	n := flag.Int("n", 300, "whole-process calls to time")
	nIn := flag.Int("inprocess", 3000, "in-process get_token() calls to time")
	nAuth := flag.Int("auth", 2000, "KcAgentAuth calls to time per library and profile")
	bin := flag.String("bin", "bin/kc-agent", "kc-agent binary")
	python := flag.String("python", "/usr/bin/python3", "Python interpreter")
	flag.Parse()
	fmt.Println("\n== Python client: get_token() in-process vs whole-process kc-agent token and oidc-token")
	if err := run(*bin, *python, *n, *nIn, *nAuth); err != nil {
		fmt.Fprintln(os.Stderr, "pyclient: error:", err)
		os.Exit(1)
	}
}

type pyResult struct {
	N        int     `json:"n"`
	P50      float64 `json:"p50_ms"`
	P95      float64 `json:"p95_ms"`
	P99      float64 `json:"p99_ms"`
	ImportMS float64 `json:"import_ms"`
}

func run(bin, python string, n, nIn, nAuth int) error {
	ctx := context.Background()
	kc, err := keycloak.Ensure(ctx, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "pyclient: "+f+"\n", a...) })
	if err != nil {
		return err
	}
	bin, _ = filepath.Abs(bin)
	src, _ := filepath.Abs(filepath.Join("clients", "python", "src"))
	dir, err := os.MkdirTemp("", "kcpybench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Setenv("KC_AGENT_CONFIG", filepath.Join(dir, "config.yaml"))
	os.Setenv("KC_AGENT_STATE_DIR", filepath.Join(dir, "state"))
	os.Setenv("KC_AGENT_SOCK", filepath.Join(dir, "s", "agent.sock"))
	os.Setenv("KC_AGENT_NO_AUTOSTART", "1")
	os.Setenv("PYTHONPATH", src)

	issuer := kc.Issuer(keycloak.RealmDemo)
	if err := keycloak.LoginWithCLI(bin, issuer, "demo", "demo"); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if err := loginBound(bin, issuer); err != nil {
		return err
	}
	agent := exec.Command(bin, "run", "--log-level", "warn")
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() { agent.Process.Signal(os.Interrupt); agent.Wait() }()
	for i := 0; exec.Command(bin, "token").Run() != nil; i++ {
		if i > 100 {
			return fmt.Errorf("agent never served a token")
		}
		time.Sleep(50 * time.Millisecond)
	}

	out, err := exec.Command(python, "bench/pyclient/inprocess.py", fmt.Sprint(nIn)).Output()
	if err != nil {
		return fmt.Errorf("in-process get_token(): %w", err)
	}
	var in pyResult
	if err := json.Unmarshal(out, &in); err != nil {
		return fmt.Errorf("in-process get_token() printed %q: %w", out, err)
	}
	cli := timing.Times("pyclient", n, func() error { return exec.Command(bin, "token").Run() })
	pyProc := timing.Times("pyclient", n/5, func() error {
		return exec.Command(python, "-c", "from kc_agent_client import get_token; get_token()").Run()
	})

	cfg, _ := config.Load(os.Getenv("KC_AGENT_CONFIG"))
	prof, _ := cfg.Profile("default")
	st, _ := store.ForProfile(prof, nil)
	rec, err := st.Get(ctx, "default")
	if err != nil {
		return err
	}
	oidc, version, oidcErr := oidcToken(issuer, rec.RefreshToken, dir, n)

	pv, _ := exec.Command(python, "--version").Output()
	fmt.Printf("| measurement (%s) | p50 | p95 | n |\n|---|---|---|---|\n", strings.TrimSpace(string(pv)))
	fmt.Printf("| get_token(), in-process, warm agent | %.3f ms | %.3f ms | %d |\n", in.P50, in.P95, in.N)
	fmt.Printf("| kc-agent token (whole process) | %s | %s | %d |\n", timing.Ms(timing.Pct(cli, 50)), timing.Ms(timing.Pct(cli, 95)), len(cli))
	fmt.Printf("| python -c 'get_token()' (whole process, incl. interpreter start) | %s | %s | %d |\n", timing.Ms(timing.Pct(pyProc, 50)), timing.Ms(timing.Pct(pyProc, 95)), len(pyProc))
	if oidcErr != nil {
		fmt.Printf("\noidc-agent comparison skipped: %v\n", oidcErr)
	} else {
		fmt.Printf("| oidc-token (oidc-agent %s, warm) | %s | %s | %d |\n", version, timing.Ms(timing.Pct(oidc, 50)), timing.Ms(timing.Pct(oidc, 95)), len(oidc))
	}
	fmt.Printf("\nimport kc_agent_client: %.1f ms (once per kernel)\n", in.ImportMS)
	inP50 := time.Duration(in.P50 * float64(time.Millisecond))
	fmt.Printf("ratio: kc-agent token p50 / get_token() p50 = %.0fx\n", float64(timing.Pct(cli, 50))/float64(inP50))
	if oidcErr == nil {
		fmt.Printf("ratio: oidc-token p50 / get_token() p50 = %.0fx (target >= 3x)\n", float64(timing.Pct(oidc, 50))/float64(inP50))
	}
	return authCost(python, nAuth)
}

// oidcToken configures Debian's oidc-agent non-interactively for the same
// realm, user and client (with its own copy of the offline token) and times
// oidc-token, warm.
func oidcToken(issuer, refreshToken, dir string, n int) ([]time.Duration, string, error) {
	a, err := oidcagent.Start(issuer, refreshToken, dir, "kcpybench")
	if err != nil {
		return nil, "", err
	}
	defer a.Stop()
	call := a.Token()
	call() // warm
	return timing.Times("pyclient", n, call), a.Version, nil
}
