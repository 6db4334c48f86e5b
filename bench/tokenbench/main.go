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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/store"
	"github.com/kc-agent/kc-agent/bench/internal/oidcagent"
	"github.com/kc-agent/kc-agent/bench/internal/timing"
	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

func main() {
	n := flag.Int("n", 300, "token calls to time")
	nDirect := flag.Int("direct", 30, "direct refresh grants to time")
	bin := flag.String("bin", "bin/kc-agent", "kc-agent binary")
	flag.StringVar(&before, "before", "", "another kc-agent binary (e.g. built from main) whose `token` is timed in the same loop, for a before/after")
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

	// The floor: a static Go hello world built the way kc-agent is
	// released, timed in the same loop as kc-agent, call for call.
	hello, err := buildHello(dir)
	if err != nil {
		return err
	}
	tokenFloor := filepath.Join(dir, "tokenfloor")
	if err := goBuild(tokenFloor, "./bench/tokenfloor", ""); err != nil {
		return err
	}
	cmds := map[string]*exec.Cmd{
		"hello":      exec.Command(hello),
		"tokenfloor": exec.Command(tokenFloor),
		"version":    exec.Command(bin, "version"),
		"token":      exec.Command(bin, "token"),
	}
	if before != "" {
		cmds["before"] = exec.Command(before, "token")
	}
	floor := interleave(n, cmds)
	tokenTimes := floor["token"].times
	inits := initTrace(bin, 50)

	cfg, _ := config.Load(os.Getenv("KC_AGENT_CONFIG"))
	prof, _ := cfg.Profile("default")
	st, _ := store.ForProfile(prof, nil)
	rec, err := st.Get(ctx, "default")
	if err != nil {
		return err
	}
	tokenURL := kc.Issuer(keycloak.RealmDemo) + "/protocol/openid-connect/token"
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"kc-agent"}, "refresh_token": {rec.RefreshToken}}.Encode()
	directTimes := timing.Times("tokenbench", nDirect, func() error {
		cmd := exec.Command("curl", "-sf", "-o", "/dev/null", "--data-binary", "@-", "-H", "Content-Type: application/x-www-form-urlencoded", tokenURL)
		cmd.Stdin = strings.NewReader(form)
		return cmd.Run()
	})

	time.Sleep(2 * time.Second)
	rss := testenv.RSSKB(agent.Process.Pid)
	cpu0 := cpuTicks(agent.Process.Pid)
	time.Sleep(10 * time.Second)
	cpuIdle := cpuTicks(agent.Process.Pid) - cpu0

	scopedTimes := timing.Times("tokenbench", n, func() error { return exec.Command(bin, "token", "--scope", "openid", "--scope", "profile").Run() })
	oa, oaErr := oidcAgentCompare(kc.Issuer(keycloak.RealmDemo), rec.RefreshToken, dir, n)

	tp50, tp95 := timing.Pct(tokenTimes, 50), timing.Pct(tokenTimes, 95)
	dp50, dp95 := timing.Pct(directTimes, 50), timing.Pct(directTimes, 95)
	fmt.Printf("| measurement | p50 | p95 | n |\n|---|---|---|---|\n")
	fmt.Printf("| kc-agent token (whole process, warm agent) | %s | %s | %d |\n", timing.Ms(tp50), timing.Ms(tp95), n)
	fmt.Printf("| curl refresh grant to Keycloak (baseline) | %s | %s | %d |\n", timing.Ms(dp50), timing.Ms(dp95), nDirect)
	fmt.Printf("| kc-agent token --scope openid --scope profile (warm) | %s | %s | %d |\n", timing.Ms(timing.Pct(scopedTimes, 50)), timing.Ms(timing.Pct(scopedTimes, 95)), n)
	if oaErr != nil {
		fmt.Printf("\noidc-agent comparison skipped: %v\n", oaErr)
	} else {
		fmt.Printf("| oidc-token (oidc-agent %s, default scope, warm) | %s | %s | %d |\n", oa.version, timing.Ms(timing.Pct(oa.def, 50)), timing.Ms(timing.Pct(oa.def, 95)), len(oa.def))
		fmt.Printf("| oidc-token -s \"openid profile\" (non-default scope) | %s | %s | %d |\n", timing.Ms(timing.Pct(oa.scoped, 50)), timing.Ms(timing.Pct(oa.scoped, 95)), len(oa.scoped))
	}
	fmt.Printf("\nWhere a whole-process `kc-agent token` goes (same run, calls interleaved; CPU and page faults from the child's rusage):\n\n")
	fmt.Printf("| process | p50 | p95 | user+sys CPU (mean) | minor page faults (mean) | binary |\n|---|---|---|---|---|---|\n")
	for _, k := range []struct{ key, label, path string }{
		{"hello", "Go hello world (CGO_ENABLED=0 -trimpath): the floor", hello},
		{"tokenfloor", "bench/tokenfloor: the same request, no net/http, no checks, 3 packages", tokenFloor},
		{"version", "kc-agent version (all package inits, cobra; no I/O)", bin},
		{"before", "kc-agent token, -before binary", before},
		{"token", "kc-agent token (discovery, owner and peer checks, one request)", bin},
	} {
		if floor[k.key] == nil {
			continue
		}
		r := floor[k.key]
		fmt.Printf("| %s | %s | %s | %s | %d | %.1f MB |\n", k.label, timing.Ms(timing.Pct(r.times, 50)), timing.Ms(timing.Pct(r.times, 95)), timing.Ms(r.cpu), r.faults, float64(fileSize(k.path))/1e6)
	}
	hp50 := float64(timing.Pct(floor["hello"].times, 50))
	fmt.Printf("\nratio: kc-agent token p50 / hello world p50 = %.2fx (target <= 2x); tokenfloor / hello world = %.2fx; kc-agent version / hello world = %.2fx\n",
		float64(tp50)/hp50, float64(timing.Pct(floor["tokenfloor"].times, 50))/hp50, float64(timing.Pct(floor["version"].times, 50))/hp50)
	if r := floor["before"]; r != nil {
		fmt.Printf("ratio: -before binary's token p50 / hello world p50 = %.2fx\n", float64(timing.Pct(r.times, 50))/hp50)
	}
	fmt.Printf("package inits (GODEBUG=inittrace=1, median of 50 runs of kc-agent token): %d inits, %.3f ms of init work, main reached %.3f ms after runtime start; largest:", inits.count, inits.sum, inits.mainAt)
	for _, t := range inits.top {
		fmt.Printf(" %s %.3f ms;", t.name, t.ms)
	}
	fmt.Println()
	fmt.Printf("ratio: direct refresh p50 / kc-agent token p50 = %.1fx (target >= 20x)\n", float64(dp50)/float64(tp50))
	if oaErr == nil {
		fmt.Printf("ratio: oidc-token p50 / kc-agent token p50, default scope = %.2fx (target >= 1x)\n", float64(timing.Pct(oa.def, 50))/float64(tp50))
		fmt.Printf("ratio: oidc-token p50 / kc-agent token p50, non-default scope = %.1fx (target >= 10x)\n", float64(timing.Pct(oa.scoped, 50))/float64(timing.Pct(scopedTimes, 50)))
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
	a, err := oidcagent.Start(issuer, refreshToken, dir, "kcbench")
	if err != nil {
		return nil, err
	}
	defer a.Stop()
	a.Token()() // warm
	return &oidcAgentResult{
		version: a.Version,
		def:     timing.Times("tokenbench", n, a.Token()),
		scoped:  timing.Times("tokenbench", n/5, a.Token("-s", "openid profile")),
	}, nil
}

type procStats struct {
	times  []time.Duration // sorted
	cpu    time.Duration   // mean user+sys
	faults int64           // mean minor page faults
}

// interleave runs each command n times, one of each per round, so that
// noise from the shared machine hits them alike.
func interleave(n int, cmds map[string]*exec.Cmd) map[string]*procStats {
	keys := make([]string, 0, len(cmds))
	for k := range cmds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]*procStats{}
	for _, k := range keys {
		out[k] = &procStats{}
	}
	for i := 0; i < n; i++ {
		for _, k := range keys {
			c := exec.Command(cmds[k].Path, cmds[k].Args[1:]...)
			start := time.Now()
			if err := c.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "tokenbench: %s failed: %v\n", k, err)
				continue
			}
			r := out[k]
			r.times = append(r.times, time.Since(start))
			if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
				r.cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
				r.faults += ru.Minflt
			}
		}
	}
	for _, r := range out {
		if len(r.times) > 0 {
			r.cpu /= time.Duration(len(r.times))
			r.faults /= int64(len(r.times))
		}
		sort.Slice(r.times, func(i, j int) bool { return r.times[i] < r.times[j] })
	}
	return out
}

// buildHello builds the floor: fmt.Println in a static binary, with the
// release build's flags.
func buildHello(dir string) (string, error) {
	src := filepath.Join(dir, "hello")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module hello\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"), 0o644)
	out := filepath.Join(dir, "hello-bin")
	return out, goBuild(out, ".", src)
}

// goBuild builds a package the way kc-agent is released.
func goBuild(out, pkg, dir string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
	}
	return nil
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

type initStats struct {
	count       int
	sum, mainAt float64 // ms, medians
	top         []struct {
		name string
		ms   float64
	}
}

var initLine = regexp.MustCompile(`^init (\S+) @([\d.]+) ms, ([\d.]+) ms clock`)

// initTrace runs `kc-agent token` with GODEBUG=inittrace=1 and takes the
// medians: total init work, when the last init ended (about when main
// starts), and the five largest inits.
func initTrace(bin string, n int) initStats {
	var sums, ends []float64
	per := map[string][]float64{}
	count := 0
	for i := 0; i < n; i++ {
		c := exec.Command(bin, "token")
		c.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		var stderr strings.Builder
		c.Stderr = &stderr
		if c.Run() != nil {
			continue
		}
		sum, end, k := 0.0, 0.0, 0
		for _, line := range strings.Split(stderr.String(), "\n") {
			m := initLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			at, _ := strconv.ParseFloat(m[2], 64)
			clock, _ := strconv.ParseFloat(m[3], 64)
			sum += clock
			end = max(end, at+clock)
			per[m[1]] = append(per[m[1]], clock)
			k++
		}
		sums, ends, count = append(sums, sum), append(ends, end), k
	}
	med := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	st := initStats{count: count, sum: med(sums), mainAt: med(ends)}
	for name, v := range per {
		st.top = append(st.top, struct {
			name string
			ms   float64
		}{name, med(v)})
	}
	sort.Slice(st.top, func(i, j int) bool { return st.top[i].ms > st.top[j].ms })
	if len(st.top) > 5 {
		st.top = st.top[:5]
	}
	return st
}

var before string

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
