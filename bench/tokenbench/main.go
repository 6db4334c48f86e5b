//go:build unix

// Command tokenbench measures whole-process `kc-agent token` against a warm
// agent, and compares it with a direct refresh grant (curl) against the same
// Keycloak, in the same run. It also reports the agent's idle RSS and CPU.
// Run it through bench/run.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

func main() {
	n := flag.Int("n", 300, "token calls to time")
	nDirect := flag.Int("direct", 30, "direct refresh grants to time")
	bin := flag.String("bin", "bin/kc-agent", "kc-agent binary")
	flag.Parse()
	if err := run(*bin, *n, *nDirect); err != nil {
		fmt.Fprintln(os.Stderr, "tokenbench: error:", err)
		os.Exit(1)
	}
}

func run(bin string, n, nDirect int) error {
	ctx := context.Background()
	kc, err := keycloak.Ensure(ctx, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "tokenbench: "+f+"\n", a...) })
	if err != nil {
		return err
	}
	bin, _ = filepath.Abs(bin)
	dir, err := os.MkdirTemp("", "kcbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Setenv("KC_AGENT_CONFIG", filepath.Join(dir, "config.yaml"))
	os.Setenv("KC_AGENT_STATE_DIR", filepath.Join(dir, "state"))
	os.Setenv("KC_AGENT_SOCK", filepath.Join(dir, "s", "agent.sock"))
	os.Setenv("KC_AGENT_NO_AUTOSTART", "1")

	if err := keycloak.LoginWithCLI(bin, kc.Issuer(keycloak.RealmDemo), "demo", "demo"); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	agent := exec.Command(bin, "run", "--log-level", "warn")
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return err
	}
	defer func() { agent.Process.Signal(os.Interrupt); agent.Wait() }()
	for i := 0; ; i++ {
		if exec.Command(bin, "token").Run() == nil {
			break
		}
		if i > 100 {
			return fmt.Errorf("agent never served a token")
		}
		time.Sleep(50 * time.Millisecond)
	}

	tokenTimes := timeIt(n, func() error { return exec.Command(bin, "token").Run() })

	cfg, _ := config.Load(os.Getenv("KC_AGENT_CONFIG"))
	prof, _ := cfg.Profile("default")
	st, _ := store.ForProfile(prof, nil)
	rec, err := st.Get(ctx, "default")
	if err != nil {
		return err
	}
	tokenURL := kc.Issuer(keycloak.RealmDemo) + "/protocol/openid-connect/token"
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"kc-agent"}, "refresh_token": {rec.RefreshToken}}.Encode()
	directTimes := timeIt(nDirect, func() error {
		cmd := exec.Command("curl", "-sf", "-o", "/dev/null", "--data-binary", "@-", "-H", "Content-Type: application/x-www-form-urlencoded", tokenURL)
		cmd.Stdin = strings.NewReader(form)
		return cmd.Run()
	})

	time.Sleep(2 * time.Second)
	rss := testenv.RSSKB(agent.Process.Pid)
	cpu0 := cpuTicks(agent.Process.Pid)
	time.Sleep(10 * time.Second)
	cpuIdle := cpuTicks(agent.Process.Pid) - cpu0

	scopedTimes := timeIt(n, func() error { return exec.Command(bin, "token", "--scope", "openid", "--scope", "profile").Run() })
	oa, oaErr := oidcAgentCompare(kc.Issuer(keycloak.RealmDemo), rec.RefreshToken, dir, n)

	tp50, tp95 := pct(tokenTimes, 50), pct(tokenTimes, 95)
	dp50, dp95 := pct(directTimes, 50), pct(directTimes, 95)
	fmt.Printf("| measurement | p50 | p95 | n |\n|---|---|---|---|\n")
	fmt.Printf("| kc-agent token (whole process, warm agent) | %s | %s | %d |\n", ms(tp50), ms(tp95), n)
	fmt.Printf("| curl refresh grant to Keycloak (baseline) | %s | %s | %d |\n", ms(dp50), ms(dp95), nDirect)
	fmt.Printf("| kc-agent token --scope openid --scope profile (warm) | %s | %s | %d |\n", ms(pct(scopedTimes, 50)), ms(pct(scopedTimes, 95)), n)
	if oaErr != nil {
		fmt.Printf("\noidc-agent comparison skipped: %v\n", oaErr)
	} else {
		fmt.Printf("| oidc-token (oidc-agent %s, default scope, warm) | %s | %s | %d |\n", oa.version, ms(pct(oa.def, 50)), ms(pct(oa.def, 95)), len(oa.def))
		fmt.Printf("| oidc-token -s \"openid profile\" (non-default scope) | %s | %s | %d |\n", ms(pct(oa.scoped, 50)), ms(pct(oa.scoped, 95)), len(oa.scoped))
	}
	fmt.Printf("\nratio: direct refresh p50 / kc-agent token p50 = %.1fx (target >= 20x)\n", float64(dp50)/float64(tp50))
	if oaErr == nil {
		fmt.Printf("ratio: oidc-token p50 / kc-agent token p50, default scope = %.2fx (target >= 1x)\n", float64(pct(oa.def, 50))/float64(tp50))
		fmt.Printf("ratio: oidc-token p50 / kc-agent token p50, non-default scope = %.1fx (target >= 10x)\n", float64(pct(oa.scoped, 50))/float64(pct(scopedTimes, 50)))
	}
	fmt.Printf("agent idle RSS: %d KiB (target < 25 MiB)\n", rss)
	fmt.Printf("agent CPU over 10 s idle: %d clock ticks (1 tick = 10 ms; target ~0)\n", cpuIdle)
	return nil
}

type oidcAgentResult struct {
	version     string
	def, scoped []time.Duration
}

// oidcAgentCompare configures Debian's oidc-agent non-interactively for the
// same realm, user and client (with its own copy of the offline token) and
// times oidc-token, warm, with the default and a non-default scope.
func oidcAgentCompare(issuer, refreshToken, dir string, n int) (*oidcAgentResult, error) {
	if _, err := exec.LookPath("oidc-agent"); err != nil {
		return nil, fmt.Errorf("oidc-agent not installed (apt-get install oidc-agent-cli)")
	}
	cfgDir := filepath.Join(dir, "oidc-agent")
	os.MkdirAll(cfgDir, 0o700)
	env := append(os.Environ(), "OIDC_CONFIG_DIR="+cfgDir, "OIDC_ENCRYPTION_PW=kc-agent-bench")
	out, err := exec.Command("oidc-agent", "--no-autoload").Output()
	if err != nil {
		return nil, fmt.Errorf("starting oidc-agent: %v", err)
	}
	var sock, pid string
	for _, part := range strings.Split(string(out), ";") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(part, "OIDC_SOCK="); ok {
			sock = v
		}
		if v, ok := strings.CutPrefix(part, "OIDCD_PID="); ok {
			pid = v
		}
	}
	if pid != "" {
		defer exec.Command("kill", pid).Run()
	}
	env = append(env, "OIDC_SOCK="+sock)
	gen := exec.Command("oidc-gen", "--manual", "--iss="+issuer, "--client-id=kc-agent", "--client-secret=",
		"--flow=refresh", "--rt-env=KC_BENCH_REFRESH_TOKEN", "--scope=openid offline_access profile email",
		"--redirect-uri=http://localhost:4242", "--pw-env", "--prompt=none", "--confirm-default", "--no-url-call", "kcbench")
	// Through the environment, not argv: a command line is visible to every
	// user in ps.
	gen.Env = append(env, "KC_BENCH_REFRESH_TOKEN="+refreshToken)
	if out, err := gen.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("oidc-gen: %v: %s", err, out)
	}
	vout, _ := exec.Command("oidc-agent", "--version").Output()
	res := &oidcAgentResult{version: strings.TrimSpace(strings.TrimPrefix(string(vout), "oidc-agent"))}
	oidcToken := func(args ...string) func() error {
		return func() error {
			c := exec.Command("oidc-token", append(args, "kcbench")...)
			c.Env = env
			return c.Run()
		}
	}
	oidcToken()() // warm
	res.def = timeIt(n, oidcToken())
	res.scoped = timeIt(n/5, oidcToken("-s", "openid profile"))
	return res, nil
}

func timeIt(n int, f func() error) []time.Duration {
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := f(); err != nil {
			fmt.Fprintln(os.Stderr, "tokenbench: call failed:", err)
			continue
		}
		out = append(out, time.Since(start))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[(len(d)-1)*p/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func cpuTicks(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+2:])
		if len(f) > 12 {
			u, _ := strconv.Atoi(f[11])
			k, _ := strconv.Atoi(f[12])
			return u + k
		}
	}
	return -1
}
