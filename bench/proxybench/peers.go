//go:build unix

package main

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func freePort() string {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	return port(ln.Addr().String())
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

// nginxMode: nginx as the reverse proxy doing the same job with a static
// Authorization header and a verified, kept-alive TLS upstream.
func nginxMode(dir, up, caPath string, client func(*url.URL, *x509.CertPool) *http.Client) (mode, bool) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench: nginx not installed (apt-get install nginx-light); skipping")
		return mode{}, false
	}
	u, _ := url.Parse(up)
	p := freePort()
	nd := filepath.Join(dir, "nginx")
	os.MkdirAll(nd, 0o755)
	conf := fmt.Sprintf(`worker_processes auto;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  upstream up { server 127.0.0.1:%[2]s; keepalive 64; }
  server {
    listen 127.0.0.1:%[3]s;
    location /api/ {
      proxy_pass https://up/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host %[4]s;
      proxy_set_header Authorization "Bearer bench-token";
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate %[5]s;
      proxy_ssl_name localhost;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }
  }
}
`, nd, u.Port(), p, u.Host, caPath)
	os.WriteFile(filepath.Join(nd, "nginx.conf"), []byte(conf), 0o644)
	cmd := exec.Command(bin, "-c", filepath.Join(nd, "nginx.conf"), "-p", nd)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil || !waitPort("127.0.0.1:"+p) {
		fmt.Fprintln(os.Stderr, "proxybench: nginx did not start; skipping")
		return mode{}, false
	}
	go func() { <-done; cmd.Process.Kill() }()
	return mode{name: "nginx reverse proxy (peer)", c: client(nil, nil), url: "http://127.0.0.1:" + p + "/api/x"}, true
}

// mitmMode: mitmproxy intercepting TLS with an addon that sets the header.
func mitmMode(dir, caPath, up string, client func(*url.URL, *x509.CertPool) *http.Client, trust func(...string) *x509.CertPool) (mode, bool) {
	bin, err := exec.LookPath("mitmdump")
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxybench: mitmproxy not installed (apt-get install mitmproxy); skipping")
		return mode{}, false
	}
	md := filepath.Join(dir, "mitm")
	os.MkdirAll(md, 0o700)
	addon := filepath.Join(md, "auth.py")
	os.WriteFile(addon, []byte("def request(flow):\n    flow.request.headers[\"Authorization\"] = \"Bearer bench-token\"\n"), 0o644)
	p := freePort()
	cmd := exec.Command(bin, "-q", "--listen-host", "127.0.0.1", "--listen-port", p,
		"--set", "confdir="+md, "--set", "ssl_verify_upstream_trusted_ca="+caPath, "-s", addon)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil || !waitPort("127.0.0.1:"+p) {
		fmt.Fprintln(os.Stderr, "proxybench: mitmdump did not start; skipping")
		return mode{}, false
	}
	go func() { <-done; cmd.Process.Kill() }()
	mitmCA := filepath.Join(md, "mitmproxy-ca-cert.pem")
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(mitmCA); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	proxyURL, _ := url.Parse("http://127.0.0.1:" + p)
	return mode{name: "mitmproxy interception (peer)", c: client(proxyURL, trust(mitmCA)), url: strings.TrimSuffix(up, "/") + "/x", slow: true}, true
}

// done is closed when the benchmark ends, to stop the peers.
var done = make(chan struct{})
