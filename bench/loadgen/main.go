// Command loadgen is a small closed-loop HTTP(S) load generator for the
// modes wrk can not drive: it speaks HTTPS through an HTTP CONNECT proxy
// (HTTPS_PROXY interception, mitmproxy). It runs in its own process, so it
// competes with the proxy under test only for the cores taskset gives it.
// Each of -c workers keeps one connection alive and sends requests back to
// back for -d; it prints one line: "rps=<n> p50_us=<n> p99_us=<n> errors=<n>
// total=<n>" (total: completed requests, warm-up included).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	target := flag.String("url", "", "URL to request")
	proxy := flag.String("proxy", "", "HTTP proxy URL (with user:password), for CONNECT")
	caFile := flag.String("ca", "", "PEM file of the CAs to trust (default: system roots)")
	conc := flag.Int("c", 8, "connections (one worker each)")
	dur := flag.Duration("d", 5*time.Second, "measuring time")
	warm := flag.Duration("warm", 500*time.Millisecond, "warm-up time before measuring (connections, TLS, leaf certificates)")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "loadgen: error: -url is required")
		os.Exit(2)
	}
	tr := &http.Transport{
		MaxIdleConnsPerHost: *conc,
		MaxConnsPerHost:     *conc,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: error:", err)
			os.Exit(1)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	if *proxy != "" {
		u, err := url.Parse(*proxy)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: error:", err)
			os.Exit(2)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var (
		measuring atomic.Bool
		stop      atomic.Bool
		errs      atomic.Int64
		total     atomic.Int64 // completed requests, warm-up included
		mu        sync.Mutex
		all       []time.Duration
		wg        sync.WaitGroup
	)
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<16)
			for !stop.Load() {
				start := time.Now()
				resp, err := client.Get(*target)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err == nil {
					total.Add(1)
				}
				if !measuring.Load() {
					continue
				}
				if err != nil {
					if errs.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "loadgen: first error:", err)
					}
					continue
				}
				lat = append(lat, time.Since(start))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	time.Sleep(*warm)
	measuring.Store(true)
	t0 := time.Now()
	time.Sleep(*dur)
	measuring.Store(false)
	elapsed := time.Since(t0)
	stop.Store(true)
	wg.Wait()
	slices.Sort(all)
	pct := func(p int) int64 {
		if len(all) == 0 {
			return 0
		}
		return all[(len(all)-1)*p/100].Microseconds()
	}
	fmt.Printf("rps=%.0f p50_us=%d p99_us=%d errors=%d total=%d\n", float64(len(all))/elapsed.Seconds(), pct(50), pct(99), errs.Load(), total.Load())
}
