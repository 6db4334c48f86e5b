//go:build unix

// Command proxybench measures what the proxy adds: the same small HTTPS
// request straight to an upstream, through a reverse route, and through
// HTTPS_PROXY with interception, in one run on loopback, with keep-alive.
// It prints p50/p99 latency and throughput and the ratios to direct.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/proxy"
	"github.com/kc-agent/kc-agent/agent/tokens"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

type staticTokens struct{}

func (staticTokens) Token(context.Context, tokens.Request) (tokens.Access, error) {
	return tokens.Access{Token: "bench-token", Type: "Bearer", ExpiresAt: time.Now().Add(time.Hour)}, nil
}

type mode struct {
	name string
	c    *http.Client
	url  string
	slow bool // fewer requests (mitmproxy)
}

type result struct {
	name     string
	p50, p99 time.Duration
	rps      float64
}

func main() {
	n := flag.Int("n", 20000, "requests per mode")
	conc := flag.Int("c", 8, "concurrent clients")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the proxied modes")
	compare := flag.Bool("compare", false, "also measure nginx (reverse proxy with a static Authorization) and mitmproxy (interception with an addon), when installed")
	flag.Parse()
	t := &testing.T{}
	dir, _ := os.MkdirTemp("", "proxybench")
	defer os.RemoveAll(dir)

	ca := testenv.NewTestCA(t)
	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" && r.URL.Path != "/direct" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	})}
	var newConns atomic.Int64
	upstream.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			newConns.Add(1)
		}
	}
	ln, _ := tlsListen(ca.TLSConfig(t))
	go upstream.Serve(ln)
	up := "https://localhost:" + port(ln.Addr().String())

	cfgText := fmt.Sprintf("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\nroutes:\n  - name: api\n    upstream: %s\n    intercept: true\nproxy:\n  listen: 127.0.0.1:0\n  ca_file: %s\n", up, ca.PEMPath)
	cfg, err := config.Parse("bench.yaml", []byte(cfgText))
	if err != nil {
		panic(err)
	}
	p, err := proxy.New(proxy.Options{Config: cfg, Tokens: staticTokens{}, StateDir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		panic(err)
	}
	if err := p.Start(); err != nil {
		panic(err)
	}
	defer p.Close()
	secret, _ := proxy.LoadOrCreateSecret(dir)
	localCA, _ := proxy.LoadOrCreateCA(proxy.CADir(dir))

	trust := func(pemPaths ...string) *x509.CertPool {
		pool := x509.NewCertPool()
		for _, f := range pemPaths {
			data, _ := os.ReadFile(f)
			pool.AppendCertsFromPEM(data)
		}
		return pool
	}
	client := func(proxyURL *url.URL, roots *x509.CertPool) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, MaxIdleConnsPerHost: *conc, ForceAttemptHTTP2: false}
		if proxyURL != nil {
			tr.Proxy = http.ProxyURL(proxyURL)
		}
		return &http.Client{Transport: tr}
	}
	proxyURL := &url.URL{Scheme: "http", User: url.UserPassword("kc", secret), Host: p.Addr()}
	modes := []mode{
		{name: "direct (baseline)", c: client(nil, trust(ca.PEMPath)), url: up + "/direct"},
		{name: "kc-agent reverse route", c: client(nil, nil), url: "http://" + p.Addr() + "/api/x"},
		{name: "kc-agent HTTPS_PROXY interception", c: client(proxyURL, trust(localCA.CertPath())), url: up + "/x"},
	}
	if *compare {
		if m, ok := nginxMode(dir, up, ca.PEMPath, client); ok {
			modes = append(modes, m)
		}
		if m, ok := mitmMode(dir, ca.PEMPath, up, client, trust); ok {
			modes = append(modes, m)
		}
	}
	var results []result
	if *cpuprofile != "" {
		f, _ := os.Create(*cpuprofile)
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	for _, m := range modes {
		count := *n
		if m.slow {
			count = *n / 10
		}
		run(m.c, m.url, count/10, *conc) // warm up: connections, leaf certs
		results = append(results, run(m.c, m.url, count, *conc))
		results[len(results)-1].name = m.name
	}
	close(done)
	base := results[0]
	fmt.Printf("| mode | p50 | p99 | req/s | added p50 | throughput vs direct |\n|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Printf("| %s | %s | %s | %.0f | %s | %.2fx |\n", r.name, us(r.p50), us(r.p99), r.rps, us(r.p50-base.p50), r.rps/base.rps)
	}
	fmt.Printf("\nupstream connections opened: %d\n", newConns.Load())
	fmt.Printf("\n%d requests per mode, %d concurrent keep-alive clients, %s\n", *n, *conc, filepath.Base(os.Args[0]))
}

func run(c *http.Client, u string, n, conc int) result {
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var next int64
	var mu sync.Mutex
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= int64(n) {
					return
				}
				t0 := time.Now()
				resp, err := c.Get(u)
				if err != nil {
					panic(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					panic(fmt.Sprintf("%s: HTTP %d", u, resp.StatusCode))
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return result{p50: lat[n/2], p99: lat[n*99/100], rps: float64(n) / el.Seconds()}
}

func us(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }
