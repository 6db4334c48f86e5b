package peer

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

func TestProcAddr(t *testing.T) {
	got, ok := procAddr(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8080}, false)
	if !ok || got != "0100007F:1F90" {
		t.Fatalf("got %s", got)
	}
	got, ok = procAddr(&net.TCPAddr{IP: net.ParseIP("::1"), Port: 443}, true)
	if !ok || got != "00000000000000000000000001000000:01BB" {
		t.Fatalf("got %s", got)
	}
}

func TestListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	o, err := TCPListener(addr)
	if err != nil || !o.Self() {
		t.Fatalf("listener %s, %v; want uid %d", o, err, os.Getuid())
	}
	ln.Close()
	if _, err := TCPListener(addr); !errors.Is(err, ErrNoSocket) {
		t.Fatal("a closed listener was found")
	}
}

// connPair opens a loopback connection and returns the server's view of it.
func connPair(t testing.TB, network, addr string) (server, client *net.TCPAddr) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	t.Cleanup(func() { ln.Close() })
	c, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.LocalAddr().(*net.TCPAddr), s.RemoteAddr().(*net.TCPAddr)
}

// sock_diag and /proc agree on who owns the client end, over IPv4 and IPv6,
// and a connection that does not exist is not found.
func TestTCPConnUIDSockDiag(t *testing.T) {
	for _, nw := range [][2]string{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		server, client := connPair(t, nw[0], nw[1])
		uid, ok, err := sockDiagUID(client, server)
		if !ok {
			t.Skip("no sock_diag here")
		}
		procUID, perr := procConnUID(client, server)
		if err != nil || perr != nil || uid != os.Getuid() || procUID != uid {
			t.Fatalf("%s: sock_diag %d %v, /proc %d %v, want %d", nw[0], uid, err, procUID, perr, os.Getuid())
		}
		gone := &net.TCPAddr{IP: client.IP, Port: 1}
		if _, _, err := sockDiagUID(gone, server); !errors.Is(err, ErrNoSocket) {
			t.Fatalf("%s: a socket that does not exist: %v", nw[0], err)
		}
	}
}

// go test -bench TCPConnUID ./internal/peer: sock_diag against reading /proc/net/tcp,
// in the same run (the /proc cost grows with the sockets on the machine).
func BenchmarkTCPConnUID(b *testing.B) {
	server, client := connPair(b, "tcp4", "127.0.0.1:0")
	b.Run("sock_diag", func(b *testing.B) {
		for b.Loop() {
			if _, ok, err := sockDiagUID(client, server); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("proc", func(b *testing.B) {
		for b.Loop() {
			if _, err := procConnUID(client, server); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The uid sock_diag names is the client's: a connection from nobody is
// nobody's.
func TestPeerOfAnotherUser(t *testing.T) {
	setpriv := testenv.OtherUser(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(setpriv, testenv.AsNobody("/usr/bin/python3", "-c",
		"import socket,sys,time; s=socket.create_connection(('127.0.0.1', int(sys.argv[1]))); time.sleep(10)", strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o, err := TCP(s)
	if err != nil || o.UID != 65534 || o.String() != "uid 65534" || o.Self() || o.Superuser() {
		t.Fatalf("%s, %v; want uid 65534", o, err)
	}
}
