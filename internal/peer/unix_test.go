//go:build unix

package peer

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/kc-agent/kc-agent/internal/testenv"
)

// Both ends of a Unix socket name this user: the accepted one (the caller
// the agent checks) and the dialed one (the agent a client checks). A
// connection of another kind is refused rather than misread.
func TestUnix(t *testing.T) {
	path := filepath.Join(testenv.TempDir(t), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	defer s.Close()
	for name, conn := range map[string]net.Conn{"dialed": c, "accepted": s} {
		o, err := Unix(conn)
		if err != nil || o.UID != os.Getuid() || !o.Self() {
			t.Errorf("%s end: %v %v, want uid %d", name, o, err, os.Getuid())
		}
	}
	tl, _ := net.Listen("tcp", "127.0.0.1:0")
	defer tl.Close()
	tc, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if o, err := Unix(tc); err == nil || o.UID != -1 {
		t.Fatalf("a TCP connection read as a Unix peer: %v %v", o, err)
	}
}
