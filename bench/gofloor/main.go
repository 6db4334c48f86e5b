// Command gofloor is the least a Go reverse proxy can do for the benchmark's
// request, to tell what net/http's proxy stack costs from what Go itself
// costs: one goroutine per client connection, an upstream TLS connection
// of its own for each (no pool, no channels between goroutines), net/http's
// request and response parsers, a static Authorization header. It is not a
// proxy to ship (no streaming of unknown-length bodies beyond what
// Response.Write does, no hop-by-hop header rules, no error answers); it is
// a floor to measure kc-agent's proxy against.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := flag.String("upstream", "", "upstream host:port (TLS)")
	serverName := flag.String("server-name", "localhost", "upstream TLS server name")
	caFile := flag.String("ca", "", "PEM file of the upstream's CA")
	prefix := flag.String("prefix", "/api", "path prefix to strip")
	pool := flag.Bool("transport", false, "send upstream through a shared http.Transport (a pool, as ReverseProxy does) instead of a connection of the client connection's own")
	flag.Parse()
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gofloor: error:", err)
		os.Exit(1)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	tlsCfg := &tls.Config{RootCAs: roots, ServerName: *serverName, ClientSessionCache: tls.NewLRUClientSessionCache(64)}
	tr := &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: 256, ForceAttemptHTTP2: false}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gofloor: error:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if *pool {
			go serveTransport(c, *upstream, *prefix, tr)
		} else {
			go serve(c, *upstream, *prefix, tlsCfg)
		}
	}
}

// serveTransport is serve with net/http's client side: the pool, and its
// reader and writer goroutines per upstream connection.
func serveTransport(c net.Conn, upstream, prefix string, tr *http.Transport) {
	defer c.Close()
	cr, cw := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		req, err := http.ReadRequest(cr)
		if err != nil {
			return
		}
		req.URL.Scheme, req.URL.Host = "https", upstream
		req.URL.Path = req.URL.Path[min(len(prefix), len(req.URL.Path)):]
		req.Host = tr.TLSClientConfig.ServerName
		req.RequestURI = ""
		req.Header.Set("Authorization", "Bearer bench-token")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return
		}
		err = resp.Write(cw)
		resp.Body.Close()
		if err != nil || cw.Flush() != nil {
			return
		}
	}
}

func serve(c net.Conn, upstream, prefix string, tlsCfg *tls.Config) {
	defer c.Close()
	up, err := tls.Dial("tcp", upstream, tlsCfg)
	if err != nil {
		return
	}
	defer up.Close()
	cr, cw := bufio.NewReader(c), bufio.NewWriter(c)
	ur, uw := bufio.NewReader(up), bufio.NewWriter(up)
	for {
		req, err := http.ReadRequest(cr)
		if err != nil {
			return
		}
		req.URL.Path = req.URL.Path[min(len(prefix), len(req.URL.Path)):]
		req.Host = tlsCfg.ServerName
		req.Header.Set("Authorization", "Bearer bench-token")
		if err := req.Write(uw); err != nil || uw.Flush() != nil {
			return
		}
		resp, err := http.ReadResponse(ur, req)
		if err != nil {
			return
		}
		err = resp.Write(cw)
		resp.Body.Close()
		if err != nil || cw.Flush() != nil {
			return
		}
	}
}
