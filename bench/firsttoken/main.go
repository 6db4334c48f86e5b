//go:build unix

// Command firsttoken measures "the first token of the day" with dpop:
// refresh against dpop: off: from starting a cold agent (`kc-agent run`,
// nothing cached) to the first `kc-agent token` answer, which loads the
// stored login (and, bound, its key), refreshes it at Keycloak (bound:
// with a DPoP proof) and serves the access token. Both modes run against
// one copy of the test realm whose client policy binds refresh tokens only
// for the client kc-agent (dpop-bind-enforcer, "Bind only refresh token
// for public client"); off uses a copy of that client the policy does not
// name. Rounds alternate between the modes; the ratio is of the same run.
// Run it through bench/run.sh, or by hand:
// scripts/with-secret-service.sh go run ./bench/firsttoken -bin bin/kc-agent
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/kc-agent/kc-agent/bench/internal/timing"
	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
	"github.com/kc-agent/kc-agent/ipc"
)

const realm = "kcagent-bench-firsttoken"

func main() {
	n := flag.Int("n", 20, "rounds per mode")
	bin := flag.String("bin", "bin/kc-agent", "kc-agent binary")
	flag.Parse()
	if err := run(*bin, *n); err != nil {
		fmt.Fprintln(os.Stderr, "firsttoken: error:", err)
		os.Exit(1)
	}
}

// mode is one profile's setup: its own config, state and socket.
type mode struct {
	name, client, sock string
	vars               map[string]string
	times              []time.Duration
}

// env is the process environment with the mode's variables.
func (m *mode) env() []string {
	env := os.Environ()
	for k, v := range m.vars {
		env = append(env, k+"="+v)
	}
	return env
}

func run(bin string, n int) error {
	ctx := context.Background()
	kc, err := keycloak.Ensure(ctx, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "firsttoken: "+f+"\n", a...) })
	if err != nil {
		return err
	}
	admin := kc.Admin()
	if err := admin.CopyRealm(ctx, keycloak.RealmTest, realm, nil); err != nil {
		return err
	}
	defer admin.DeleteRealm(context.Background(), realm)
	if err := admin.CopyClient(ctx, realm, "kc-agent", "kc-agent-plain"); err != nil {
		return err
	}
	if err := admin.RequireDPoPFor(ctx, realm, true, "kc-agent"); err != nil {
		return err
	}
	bin, _ = filepath.Abs(bin)
	dir, _ := os.MkdirTemp("", "kcfirst")
	defer os.RemoveAll(dir)
	modes := []*mode{{name: "off", client: "kc-agent-plain"}, {name: "refresh", client: "kc-agent"}}
	for _, m := range modes {
		if err := m.setup(bin, filepath.Join(dir, m.name), kc.Issuer(realm)); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	for i := 0; i < n; i++ {
		for _, m := range modes {
			d, err := m.firstToken(ctx, bin)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", m.name, i+1, err)
			}
			m.times = append(m.times, d)
		}
	}
	off, ref := sorted(modes[0].times), sorted(modes[1].times)
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"off", off}, {"refresh", ref}} {
		fmt.Printf("dpop %-8s cold agent -> first token: p50 %s  p90 %s  max %s  (n=%d)\n", m.name, timing.Ms(timing.Pct(m.d, 50)), timing.Ms(timing.Pct(m.d, 90)), timing.Ms(timing.Pct(m.d, 100)), len(m.d))
	}
	fmt.Printf("ratio refresh / off: p50 %.2fx  p90 %.2fx\n", ratio(ref, off, 50), ratio(ref, off, 90))
	return nil
}

func sorted(d []time.Duration) []time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d
}

func ratio(a, b []time.Duration, p int) float64 {
	return float64(timing.Pct(a, p)) / float64(timing.Pct(b, p))
}

// setup writes the mode's profile and signs it in (the test browser).
func (m *mode) setup(bin, dir, issuer string) error {
	m.sock = filepath.Join(dir, "s", "agent.sock")
	m.vars = map[string]string{"KC_AGENT_CONFIG": filepath.Join(dir, "config.yaml"), "KC_AGENT_STATE_DIR": filepath.Join(dir, "state"),
		"KC_AGENT_SOCK": m.sock, "KC_AGENT_NO_AUTOSTART": "1", "KC_AGENT_PROFILE": "bench-" + m.name}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfg := fmt.Sprintf("profiles:\n  bench-%s:\n    issuer: %s\n    client_id: %s\n    dpop: %s\n", m.name, issuer, m.client, m.name)
	if err := os.WriteFile(m.vars["KC_AGENT_CONFIG"], []byte(cfg), 0o600); err != nil {
		return err
	}
	for k, v := range m.vars { // LoginWithCLI runs kc-agent in this environment
		os.Setenv(k, v)
	}
	return keycloak.LoginWithCLI(bin, issuer, "alice", "alice-pw")
}

// firstToken starts a cold agent, waits for it to answer, and asks for a
// token: the time from the start to the token.
func (m *mode) firstToken(ctx context.Context, bin string) (time.Duration, error) {
	start := time.Now()
	agent := exec.Command(bin, "run", "--log-level", "warn")
	agent.Env = m.env()
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		return 0, err
	}
	defer func() { agent.Process.Signal(os.Interrupt); agent.Wait() }()
	c := ipc.NewClientAt(m.sock)
	for i := 0; c.Health(ctx) != nil; i++ {
		if i > 2000 {
			return 0, fmt.Errorf("the agent did not start")
		}
		time.Sleep(2 * time.Millisecond)
	}
	tok := exec.Command(bin, "token", "--format", "json")
	tok.Env = m.env()
	if out, err := tok.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("kc-agent token: %v: %.200s", err, out)
	}
	return time.Since(start), nil
}
