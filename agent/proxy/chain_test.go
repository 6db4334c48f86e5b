package proxy

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/agent/tokens"
)

type noTokens struct{}

func (noTokens) Token(context.Context, tokens.Request) (tokens.Access, error) {
	return tokens.Access{}, &tokens.Error{Code: "login_required", Msg: "no"}
}

// A CONNECT to a host without a rule goes through the user's own upstream
// proxy when proxy.upstream_proxy is set.
func TestBlindTunnelChainsThroughUpstreamProxy(t *testing.T) {
	// The target: a TCP echo server.
	target, _ := net.Listen("tcp", "127.0.0.1:0")
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	// The corporate proxy: answers CONNECT and pipes.
	var connects atomic.Int32
	corp := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		connects.Add(1)
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c, brw, _ := w.(http.Hijacker).Hijack()
		brw.WriteString("HTTP/1.1 200 OK\r\n\r\n")
		brw.Flush()
		go func() { io.Copy(up, c); up.Close() }()
		io.Copy(c, up)
		c.Close()
	})}
	corpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	go corp.Serve(corpLn)
	defer corp.Close()

	cfg, err := config.Parse("c.yaml", []byte(fmt.Sprintf("proxy:\n  listen: 127.0.0.1:0\n  upstream_proxy: http://%s\n", corpLn.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Config: cfg, Tokens: noTokens{}, StateDir: testenv.TempDir(t), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	auth := base64.StdEncoding.EncodeToString([]byte("kc:" + p.secret))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\n\r\n", target.Addr(), target.Addr(), auth)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	fmt.Fprint(c, "ping\n")
	line, _ := br.ReadString('\n')
	if line != "ping\n" {
		t.Fatalf("tunnel echo: %q", line)
	}
	if connects.Load() != 1 {
		t.Fatalf("the upstream proxy saw %d CONNECTs, want 1", connects.Load())
	}
}
