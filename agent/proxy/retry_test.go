package proxy

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/agent/config"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

func newProxyFor(t *testing.T, yaml string) *Proxy {
	t.Helper()
	cfg, err := config.Parse("c.yaml", []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\n"+yaml))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Options{Config: cfg, Tokens: fakeTokens{}, StateDir: testenv.TempDir(t), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A taken address is waited for: StartRetrying succeeds, status says the
// proxy waits (who holds the address, and what to do), a config change
// meanwhile becomes what the wait is for, and once the address is free the
// proxy listens there without a restart.
func TestProxyWaitsForATakenAddress(t *testing.T) {
	squat, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := squat.Addr().String()
	p := newProxyFor(t, "proxy:\n  listen: "+addr+"\n")
	if err := p.StartRetrying(); err != nil {
		t.Fatalf("StartRetrying with the address taken: %v", err)
	}
	st := p.Status(false)
	if st.Running || !st.Retrying || !strings.Contains(st.Error, addr) ||
		!strings.Contains(st.Hint, "starts by itself") || !strings.Contains(st.Hint, "proxy.listen: auto") || strings.Contains(st.Hint, ":0") {
		t.Fatalf("status while the address is taken: %+v", st)
	}
	cfg, err := config.Parse("c.yaml", []byte("profiles:\n  default:\n    issuer: https://sso.example.com/realms/r\nproxy:\n  listen: "+addr+"\nroutes:\n  - name: later\n    upstream: https://api.example.com\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Reconfigure(cfg); err != nil {
		t.Fatalf("a config change while waiting: %v", err)
	}
	if st := p.Status(false); !st.Retrying || len(st.Routes) != 1 || st.Routes[0].URL != "" {
		t.Fatalf("status after the change: %+v", st)
	}
	squat.Close()
	waitUntil(t, "the proxy listens on the freed address", func() bool { return p.Status(false).Running })
	st = p.Status(false)
	if st.Addr != addr || st.Retrying || st.Error != "" || len(st.Routes) != 1 || st.Routes[0].Name != "later" {
		t.Fatalf("status once started: %+v", st)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("the proxy does not listen on %s: %v", addr, err)
	}
	c.Close()
}

// Close ends the wait: a proxy closed while waiting never takes the
// address afterwards.
func TestProxyClosedWhileWaitingStaysClosed(t *testing.T) {
	squat, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := squat.Addr().String()
	p := newProxyFor(t, "proxy:\n  listen: "+addr+"\n")
	if err := p.StartRetrying(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	squat.Close()
	time.Sleep(2 * retryMin)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("a closed proxy took %s: %v", addr, err)
	}
	ln.Close()
}

// An error that waiting can not cure is returned at once.
func TestProxyStartRetryingReturnsOtherErrors(t *testing.T) {
	p := newProxyFor(t, "proxy:\n  listen: 192.0.2.1:1\n  unsafe_listen_non_loopback: true\n") // not on this host (TEST-NET-1)
	if err := p.StartRetrying(); err == nil || p.Status(false).Retrying {
		t.Fatalf("StartRetrying on an address not on this host: %v, %+v", err, p.Status(false))
	}
}
