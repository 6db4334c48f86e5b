//go:build linux

// Command proxyfair measures kc-agent's proxy the way the field measures
// proxies: every party in its own process, pinned with taskset.
//
//   - upstream: nginx serving a 11-byte body over TLS (one worker);
//   - kc-agent: the real binary (`kc-agent run`) with a route, logged in
//     against the test Keycloak, so every request carries a real token;
//   - peers: an nginx reverse proxy with a static Authorization header and
//     upstream keepalive (as nginx's docs recommend), HAProxy doing the
//     same, and mitmproxy intercepting TLS with an addon that sets the header;
//   - Go floors: bench/gofloor, the least a Go proxy can do, with and
//     without net/http's Transport pool;
//   - load: wrk for everything it can drive, and bench/loadgen (a small Go
//     closed-loop generator in its own process) for everything, since wrk
//     can not speak through a CONNECT proxy and interception needs one.
//
// Modes alternate within each round; each figure is the median of the
// rounds, and each ratio to nginx is taken within a round, against nginx
// driven by the same load generator at the same concurrency. Besides req/s
// and latency it reports the CPU time the proxy's processes spent per
// request, which the neighbours' load on a shared machine moves far less.
// Run it through bench/run.sh or bench/proxy-fair.sh.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv/keycloak"
)

const body = `{"ok":true}`

type mode struct {
	name  string
	gen   string // "wrk" or "loadgen"
	url   string
	proxy string // loadgen: CONNECT proxy URL
	ca    string // loadgen: CA bundle to trust
	base  bool   // the nginx reverse proxy: the baseline of its generator
	pid   int    // the process (tree) doing the proxying, for its CPU time
}

type sample struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
	cpuPer   time.Duration // CPU time of the proxy's processes per request
	round    int
}

type layout struct {
	name, load, upstream, proxy string // taskset CPU lists; "" = not pinned
}

var layouts = map[string]layout{
	// The proxy under test has a core of its own; the load generator and
	// the upstream (both cheap next to a proxy) share the other.
	"proxy-alone": {"proxy-alone", "0", "0", "1"},
	// The load generator has a core of its own; upstream and proxy share one.
	"load-alone": {"load-alone", "0", "1", "1"},
	"none":       {"none", "", "", ""},
}

func main() {
	bin := flag.String("bin", "bin/kc-agent", "kc-agent binary")
	dur := flag.Duration("d", 3*time.Second, "measuring time per mode, concurrency and round")
	rounds := flag.Int("rounds", 3, "rounds; modes alternate within each")
	concs := flag.String("c", "1,8,64", "concurrencies (connections)")
	lay := flag.String("layout", "proxy-alone", "CPU pinning: proxy-alone (proxy on CPU 1; load and upstream on CPU 0), load-alone (load on CPU 0; upstream and proxy on CPU 1) or none")
	only := flag.String("only", "", "measure only modes whose name contains one of these comma-separated strings (the nginx baseline always runs)")
	closeEach := flag.Bool("close", false, "a new connection for every request (wrk -H 'Connection: close'), as clients that run curl per request do; wrk modes only")
	hold := flag.Bool("hold", false, "set everything up, print the modes' URLs and PIDs, and wait for Ctrl-C (for profiling by hand)")
	flag.Var(&agents, "agent", "a kc-agent to measure, as label=binary[,KEY=VALUE...] (repeatable; default: kc-agent=-bin)")
	flag.Parse()
	l, ok := layouts[*lay]
	if !ok {
		fail(fmt.Errorf("unknown layout %q", *lay))
	}
	var cs []int
	for _, f := range strings.Split(*concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fail(fmt.Errorf("bad -c %q", *concs))
		}
		cs = append(cs, n)
	}
	b := &bench{layout: l, dur: *dur, closeEach: *closeEach}
	defer b.stop()
	if err := b.setup(*bin); err != nil {
		b.stop()
		fail(err)
	}
	if *hold {
		for _, m := range b.modes {
			fmt.Printf("%-40s %-8s pid %-7d %s %s\n", m.name, m.gen, m.pid, m.url, m.proxy)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		return
	}
	var modes []mode
	for _, m := range b.modes {
		if *closeEach && m.gen != "wrk" {
			continue
		}
		keep := m.base || *only == ""
		for _, o := range strings.Split(*only, ",") {
			keep = keep || (o != "" && strings.Contains(m.name, o))
		}
		if keep {
			modes = append(modes, m)
		}
	}
	results := map[string]map[int][]sample{} // key: gen+"\x00"+name
	key := func(m mode) string { return m.gen + "\x00" + m.name }
	for r := 0; r < *rounds; r++ {
		for _, c := range cs {
			for _, m := range modes {
				s, err := b.measure(m, c)
				if err != nil {
					fmt.Fprintf(os.Stderr, "proxyfair: %s via %s, c=%d: %v\n", m.name, m.gen, c, err)
					continue
				}
				if results[key(m)] == nil {
					results[key(m)] = map[int][]sample{}
				}
				s.round = r
				results[key(m)][c] = append(results[key(m)][c], s)
			}
		}
		fmt.Fprintf(os.Stderr, "proxyfair: round %d of %d done\n", r+1, *rounds)
	}

	fmt.Printf("Layout %q: load generator on CPU %s, upstream nginx on CPU %s, proxy under test on CPU %s; %d rounds of %s per mode and concurrency, modes alternating; medians over rounds, ratio range over rounds in brackets.\n\n",
		l.name, orAny(l.load), orAny(l.upstream), orAny(l.proxy), *rounds, *dur)
	if *closeEach {
		fmt.Printf("Every request on a new connection (wrk -H 'Connection: close'): what a client that runs curl per request costs.\n\n")
	}
	for _, gen := range []string{"wrk", "loadgen"} {
		if *closeEach && gen != "wrk" {
			continue
		}
		var base mode
		for _, m := range modes {
			if m.gen == gen && m.base {
				base = m
			}
		}
		fmt.Printf("Load generator: %s\n\n", genDesc[gen])
		fmt.Printf("| mode | conns | req/s | p50 | p99 | req/s vs nginx | p99 vs nginx | proxy CPU/req | req per CPU-s vs nginx | errors |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, c := range cs {
			bs := results[key(base)][c]
			for _, m := range modes {
				if m.gen != gen {
					continue
				}
				ss := results[key(m)][c]
				if len(ss) == 0 {
					fmt.Printf("| %s | %d | failed | | | | | | | |\n", m.name, c)
					continue
				}
				rr, pr, cr := ratios(ss, bs)
				errs := 0
				for _, s := range ss {
					errs += s.errors
				}
				fmt.Printf("| %s | %d | %.0f | %s | %s | %s | %s | %.1f µs | %s | %d |\n", m.name, c, median(ss, func(s sample) float64 { return s.rps }),
					us(median(ss, func(s sample) float64 { return float64(s.p50) })), us(median(ss, func(s sample) float64 { return float64(s.p99) })),
					rr, pr, median(ss, func(s sample) float64 { return float64(s.cpuPer) / 1e3 }), cr, errs)
			}
		}
		fmt.Println()
	}
}

var genDesc = map[string]string{
	"wrk":     "wrk 1 thread (Debian); it can not use a CONNECT proxy, so no interception modes",
	"loadgen": "bench/loadgen (Go, closed loop, one connection per worker, CONNECT-capable)",
}

func orAny(cpu string) string {
	if cpu == "" {
		return "any"
	}
	return cpu
}

// ratios gives "median [min-max]" of the per-round ratios to the
// baseline's: req/s, p99, and requests per CPU-second of the proxy.
func ratios(ss, bs []sample) (string, string, string) {
	var rr, pr, cr []float64
	for _, s := range ss {
		i := slices.IndexFunc(bs, func(b sample) bool { return b.round == s.round })
		if i < 0 {
			continue // the baseline failed in that round
		}
		b := bs[i]
		rr = append(rr, s.rps/b.rps)
		pr = append(pr, float64(s.p99)/float64(b.p99))
		if s.cpuPer > 0 {
			cr = append(cr, float64(b.cpuPer)/float64(s.cpuPer))
		}
	}
	f := func(v []float64) string {
		if len(v) == 0 {
			return "-"
		}
		slices.Sort(v)
		return fmt.Sprintf("%.2fx [%.2f-%.2f]", v[len(v)/2], v[0], v[len(v)-1])
	}
	return f(rr), f(pr), f(cr)
}

func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func us(ns float64) string {
	d := time.Duration(ns)
	if d >= 10*time.Millisecond {
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3f ms", float64(d)/1e6)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "proxyfair: error:", err)
	os.Exit(1)
}

type bench struct {
	layout  layout
	dur     time.Duration
	dir     string
	procs   []*exec.Cmd
	modes   []mode
	loadgen string
	last    int // pid of the process start started last
	// closeEach: a new connection for every request (wrk modes only).
	closeEach bool
}

// pinned is a command run on the given CPUs (taskset), or anywhere.
func pinned(cpus, name string, args ...string) *exec.Cmd {
	if cpus == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", cpus, name}, args...)...)
}

func (b *bench) start(cmd *exec.Cmd, addr string) error {
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	b.procs = append(b.procs, cmd)
	b.last = cmd.Process.Pid
	if addr != "" && !waitPort(addr) {
		return fmt.Errorf("%s did not listen on %s", cmd.Args, addr)
	}
	return nil
}

func (b *bench) stop() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		p := b.procs[i]
		p.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			p.Process.Kill()
		}
	}
	b.procs = nil
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

func (b *bench) setup(bin string) error {
	for _, tool := range []string{"wrk", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (bench/run.sh installs it)", tool)
		}
	}
	var err error
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	if b.dir, err = os.MkdirTemp("", "proxyfair"); err != nil {
		return err
	}
	// The load generator and the Go floor, each its own binary.
	b.loadgen = filepath.Join(b.dir, "loadgen")
	gofloor := filepath.Join(b.dir, "gofloor")
	for _, t := range [][2]string{{b.loadgen, "./bench/loadgen"}, {gofloor, "./bench/gofloor"}} {
		build := exec.Command("go", "build", "-trimpath", "-o", t[0], t[1])
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", t[1], err, out)
		}
	}
	caPath, certPath, keyPath, err := writeCerts(b.dir)
	if err != nil {
		return err
	}

	// Upstream: nginx over TLS, one worker.
	upPort := freePort()
	up := "https://localhost:" + upPort
	if err := b.nginx("upstream", b.layout.upstream, fmt.Sprintf(`
  server {
    listen 127.0.0.1:%s ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    keepalive_requests 100000000;
    location / { default_type application/json; return 200 '%s'; }
  }`, upPort, certPath, keyPath, body), "127.0.0.1:"+upPort); err != nil {
		return err
	}
	upPID := b.last

	// kc-agent, logged in for real, with a reverse route that also
	// intercepts HTTPS_PROXY traffic to the same upstream; one per -agent.
	ctx := context.Background()
	kc, err := keycloak.Ensure(ctx, func(f string, a ...any) { fmt.Fprintf(os.Stderr, "proxyfair: "+f+"\n", a...) })
	if err != nil {
		return err
	}
	direct := up + "/x"
	b.modes = append(b.modes,
		mode{name: "direct to upstream", gen: "wrk", url: direct, pid: upPID},
		mode{name: "direct to upstream", gen: "loadgen", url: direct, ca: caPath, pid: upPID},
	)
	if len(agents) == 0 {
		agents = []agentSpec{{label: "kc-agent", bin: bin}}
	}
	for i, a := range agents {
		if err := b.startAgent(i, a, kc.Issuer(keycloak.RealmDemo), up, caPath); err != nil {
			return fmt.Errorf("%s: %w", a.label, err)
		}
	}
	// What Go can do: bench/gofloor, with and without net/http's Transport.
	for _, v := range []struct{ name, flag string }{
		{"Go floor: ReadRequest/ReadResponse loop, own upstream conn (bench/gofloor)", ""},
		{"Go floor + http.Transport pool (bench/gofloor -transport)", "-transport"},
	} {
		gp := freePort()
		args := []string{"-listen", "127.0.0.1:" + gp, "-upstream", "127.0.0.1:" + upPort, "-ca", caPath}
		if v.flag != "" {
			args = append(args, v.flag)
		}
		cmd := pinned(b.layout.proxy, gofloor, args...)
		cmd.Stdout = nil
		if err := b.start(cmd, "127.0.0.1:"+gp); err != nil {
			return err
		}
		u := "http://127.0.0.1:" + gp + "/api/x"
		b.modes = append(b.modes,
			mode{name: v.name, gen: "wrk", url: u, pid: b.last},
			mode{name: v.name, gen: "loadgen", url: u, pid: b.last},
		)
	}
	ngPort := freePort()
	if err := b.nginx("proxy", b.layout.proxy, fmt.Sprintf(`
  upstream up { server 127.0.0.1:%[1]s; keepalive 64; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:%[2]s;
    keepalive_requests 100000000;
    location /api/ {
      proxy_pass https://up/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host localhost:%[1]s;
      proxy_set_header Authorization "Bearer bench-token";
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate %[3]s;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
  }`, upPort, ngPort, caPath), "127.0.0.1:"+ngPort); err != nil {
		return err
	}
	ngURL := "http://127.0.0.1:" + ngPort + "/api/x"
	b.modes = append(b.modes,
		mode{name: "nginx reverse proxy (peer)", gen: "wrk", url: ngURL, base: true, pid: b.last},
		mode{name: "nginx reverse proxy (peer)", gen: "loadgen", url: ngURL, base: true, pid: b.last},
	)
	if _, err := exec.LookPath("haproxy"); err == nil {
		hpPort := freePort()
		hcfg := filepath.Join(b.dir, "haproxy.cfg")
		os.WriteFile(hcfg, []byte(fmt.Sprintf(`global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:%[1]s
  default_backend be
backend be
  http-request set-header Authorization "Bearer bench-token"
  http-request set-header Host localhost:%[2]s
  http-request replace-path /api(/.*) \1
  server up 127.0.0.1:%[2]s ssl verify required ca-file %[3]s sni str(localhost) alpn http/1.1
`, hpPort, upPort, caPath)), 0o644)
		if err := b.start(pinned(b.layout.proxy, "haproxy", "-db", "-f", hcfg), "127.0.0.1:"+hpPort); err != nil {
			fmt.Fprintln(os.Stderr, "proxyfair: haproxy did not start; skipping:", err)
		} else {
			hpURL := "http://127.0.0.1:" + hpPort + "/api/x"
			b.modes = append(b.modes,
				mode{name: "HAProxy reverse proxy (peer)", gen: "wrk", url: hpURL, pid: b.last},
				mode{name: "HAProxy reverse proxy (peer)", gen: "loadgen", url: hpURL, pid: b.last},
			)
		}
	} else {
		fmt.Fprintln(os.Stderr, "proxyfair: haproxy not installed; skipping")
	}
	if _, err := exec.LookPath("mitmdump"); err == nil {
		md := filepath.Join(b.dir, "mitm")
		os.MkdirAll(md, 0o700)
		addon := filepath.Join(md, "auth.py")
		os.WriteFile(addon, []byte("def request(flow):\n    flow.request.headers[\"Authorization\"] = \"Bearer bench-token\"\n"), 0o644)
		mp := freePort()
		err := b.start(pinned(b.layout.proxy, "mitmdump", "-q", "--listen-host", "127.0.0.1", "--listen-port", mp,
			"--set", "confdir="+md, "--set", "ssl_verify_upstream_trusted_ca="+caPath, "-s", addon), "127.0.0.1:"+mp)
		if err != nil {
			fmt.Fprintln(os.Stderr, "proxyfair: mitmdump did not start; skipping:", err)
		} else {
			b.modes = append(b.modes, mode{name: "mitmproxy interception + addon (peer)", gen: "loadgen", url: direct,
				proxy: "http://127.0.0.1:" + mp, ca: filepath.Join(md, "mitmproxy-ca-cert.pem"), pid: b.last})
		}
	} else {
		fmt.Fprintln(os.Stderr, "proxyfair: mitmproxy not installed; skipping")
	}
	return nil
}

// agentSpec is one kc-agent to measure: a binary and extra environment
// (e.g. GOGC=200), so that variants are compared within one run.
type agentSpec struct {
	label string
	bin   string
	env   []string
}

type agentFlags []agentSpec

func (f *agentFlags) String() string { return "" }

// Set parses "label=binary[,KEY=VALUE...]".
func (f *agentFlags) Set(v string) error {
	label, rest, ok := strings.Cut(v, "=")
	if !ok || label == "" {
		return fmt.Errorf("want label=binary[,KEY=VALUE...], not %q", v)
	}
	parts := strings.Split(rest, ",")
	bin, err := filepath.Abs(parts[0])
	if err != nil {
		return err
	}
	*f = append(*f, agentSpec{label: label, bin: bin, env: parts[1:]})
	return nil
}

var agents agentFlags

func (b *bench) startAgent(i int, a agentSpec, issuer, up, caPath string) error {
	dir := filepath.Join(b.dir, fmt.Sprintf("agent%d", i))
	os.MkdirAll(dir, 0o700)
	port := freePort()
	cfg := fmt.Sprintf("profiles:\n  default:\n    issuer: %s\n    store: file\nroutes:\n  - name: api\n    upstream: %s\n    intercept: true\nproxy:\n  listen: 127.0.0.1:%s\n  ca_file: %s\n",
		issuer, up, port, caPath)
	cfgPath := filepath.Join(dir, "kc-agent.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	env := map[string]string{"KC_AGENT_CONFIG": cfgPath, "KC_AGENT_STATE_DIR": filepath.Join(dir, "state"),
		"KC_AGENT_SOCK": filepath.Join(dir, "s", "agent.sock"), "KC_AGENT_NO_AUTOSTART": "1"}
	for k, v := range env {
		os.Setenv(k, v) // for keycloak.LoginWithCLI
	}
	if err := keycloak.LoginWithCLI(a.bin, issuer, "demo", "demo"); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	cmd := pinned(b.layout.proxy, a.bin, "run", "--log-level", "warn")
	cmd.Env = append(os.Environ(), a.env...)
	if err := b.start(cmd, "127.0.0.1:"+port); err != nil {
		return err
	}
	pid := b.last
	envOut, err := exec.Command(a.bin, "env").Output()
	if err != nil {
		return fmt.Errorf("kc-agent env: %w", err)
	}
	vars := parseEnv(string(envOut))
	if vars["HTTPS_PROXY"] == "" || vars["SSL_CERT_FILE"] == "" {
		return fmt.Errorf("kc-agent env printed no HTTPS_PROXY or SSL_CERT_FILE:\n%s", envOut)
	}
	direct := up + "/x"
	// The agent makes its local CA on the first intercepted connection, and
	// the load generator reads the bundle when it starts.
	if err := exec.Command("curl", "-sfk", "-o", "/dev/null", "-x", vars["HTTPS_PROXY"], direct).Run(); err != nil {
		return fmt.Errorf("a first request through kc-agent's HTTPS_PROXY failed: %w", err)
	}
	rev := "http://127.0.0.1:" + port + "/api/x"
	b.modes = append(b.modes,
		mode{name: a.label + " reverse route", gen: "wrk", url: rev, pid: pid},
		mode{name: a.label + " reverse route", gen: "loadgen", url: rev, pid: pid},
		mode{name: a.label + " HTTPS_PROXY interception", gen: "loadgen", url: direct, proxy: vars["HTTPS_PROXY"], ca: vars["SSL_CERT_FILE"], pid: pid},
	)
	return nil
}

// nginx starts an nginx with one worker and the given server blocks.
func (b *bench) nginx(name, cpus, servers, addr string) error {
	nd := filepath.Join(b.dir, "nginx-"+name)
	os.MkdirAll(nd, 0o755)
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
%[2]s
}
`, nd, servers)
	cfg := filepath.Join(nd, "nginx.conf")
	os.WriteFile(cfg, []byte(conf), 0o644)
	return b.start(pinned(cpus, "nginx", "-c", cfg, "-p", nd), addr)
}

// measure runs one load at one concurrency. Besides req/s and latency it
// takes the CPU time the proxy's processes spent per request: on a shared
// machine, throughput moves with the neighbours' load, CPU per request
// much less (it is what one core's worth of req/s would be).
func (b *bench) measure(m mode, conc int) (sample, error) {
	secs := strconv.Itoa(max(1, int(b.dur.Seconds())))
	if m.gen == "wrk" {
		// A short warm-up run: connections, the upstream pool.
		var hdr []string
		if b.closeEach {
			hdr = []string{"-H", "Connection: close"}
		}
		pinned(b.layout.load, "wrk", append(hdr, "-t1", "-c"+strconv.Itoa(conc), "-d1s", m.url)...).Run()
		cpu0 := treeCPU(m.pid)
		out, err := pinned(b.layout.load, "wrk", append(hdr, "-t1", "-c"+strconv.Itoa(conc), "-d"+secs+"s", "--latency", m.url)...).Output()
		cpu := treeCPU(m.pid) - cpu0
		if err != nil {
			return sample{}, err
		}
		s, err := parseWrk(string(out))
		if n := wrkCount(string(out)); n > 0 {
			s.cpuPer = cpu / time.Duration(n)
		}
		return s, err
	}
	// A short warm-up run: connections, the upstream pool, leaf certificates.
	warm := []string{"-url", m.url, "-c", strconv.Itoa(conc), "-d", "500ms", "-warm", "0s"}
	if m.proxy != "" {
		warm = append(warm, "-proxy", m.proxy)
	}
	if m.ca != "" {
		warm = append(warm, "-ca", m.ca)
	}
	pinned(b.layout.load, b.loadgen, warm...).Run()
	args := []string{"-url", m.url, "-c", strconv.Itoa(conc), "-d", b.dur.String(), "-warm", "0s"}
	if m.proxy != "" {
		args = append(args, "-proxy", m.proxy)
	}
	if m.ca != "" {
		args = append(args, "-ca", m.ca)
	}
	cmd := pinned(b.layout.load, b.loadgen, args...)
	cmd.Stderr = os.Stderr
	cpu0 := treeCPU(m.pid)
	out, err := cmd.Output()
	cpu := treeCPU(m.pid) - cpu0
	if err != nil {
		return sample{}, err
	}
	var s sample
	var p50, p99, total int64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "rps=%f p50_us=%d p99_us=%d errors=%d total=%d", &s.rps, &p50, &p99, &s.errors, &total); err != nil {
		return sample{}, fmt.Errorf("loadgen printed %q", out)
	}
	if total > 0 {
		s.cpuPer = cpu / time.Duration(total)
	}
	s.p50, s.p99 = time.Duration(p50)*time.Microsecond, time.Duration(p99)*time.Microsecond
	return s, nil
}

var (
	wrkPct  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkRPS  = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkNon2 = regexp.MustCompile(`(?m)Non-2xx or 3xx responses: (\d+)`)
	wrkSock = regexp.MustCompile(`(?m)Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

var wrkN = regexp.MustCompile(`(?m)^\s+(\d+) requests in`)

func wrkCount(out string) int {
	if m := wrkN.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// treeCPU is the time on CPU of a process, its threads and its children
// (nginx's workers), from schedstat (nanoseconds).
func treeCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	var total time.Duration
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	for _, t := range tasks {
		if data, err := os.ReadFile(filepath.Join(t, "schedstat")); err == nil {
			if f := strings.Fields(string(data)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				total += time.Duration(ns)
			}
		}
		if data, err := os.ReadFile(filepath.Join(t, "children")); err == nil {
			for _, c := range strings.Fields(string(data)) {
				if cp, err := strconv.Atoi(c); err == nil {
					total += treeCPU(cp)
				}
			}
		}
	}
	return total
}

func parseWrk(out string) (sample, error) {
	var s sample
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return s, errors.New("no Requests/sec in wrk's output:\n" + out)
	}
	s.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9}[p[3]]
		d := time.Duration(v * unit)
		if p[1] == "50" {
			s.p50 = d
		} else {
			s.p99 = d
		}
	}
	if m := wrkNon2.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		s.errors += n
	}
	if m := wrkSock.FindStringSubmatch(out); m != nil {
		for _, f := range m[1:] {
			n, _ := strconv.Atoi(f)
			s.errors += n
		}
	}
	return s, nil
}

func parseEnv(out string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "export ")
		k, v, ok := strings.Cut(line, "=")
		if ok {
			vars[k] = strings.Trim(v, `'"`)
		}
	}
	return vars
}

// writeCerts writes a CA and a leaf for localhost/127.0.0.1 signed by it.
func writeCerts(dir string) (caPath, certPath, keyPath string, err error) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "proxyfair CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	caPath, certPath, keyPath = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return caPath, certPath, keyPath, nil
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

func waitPort(addr string) bool {
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
