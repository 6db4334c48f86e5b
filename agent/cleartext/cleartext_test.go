package cleartext

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/tcpowner"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

// otherUserListener listens on a free loopback port as another user and
// reports every byte it receives on its stdout; it returns the port and
// what it received so far.
func otherUserListener(t *testing.T) (port string, received func() string) {
	t.Helper()
	const program = `
import socket, sys, threading
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1], flush=True)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            return
        sys.stdout.write(repr(d) + "\n")
        sys.stdout.flush()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`
	setpriv := testenv.OtherUser(t)
	cmd := exec.Command(setpriv, append(testenv.AsNobody, "/usr/bin/python3", "-c", program)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	br := bufio.NewReader(out)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("the other user's listener did not start: %v", err)
	}
	var mu sync.Mutex
	var got bytes.Buffer
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := br.Read(b)
			mu.Lock()
			got.Write(b[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return strings.TrimSpace(line), func() string {
		time.Sleep(200 * time.Millisecond) // let a late write arrive
		mu.Lock()
		defer mu.Unlock()
		return got.String()
	}
}

// A plain-http request to a loopback port another user listens on never
// leaves: the dial is refused, naming the uid, before the first byte.
func TestRefusesAnotherUsersListener(t *testing.T) {
	port, received := otherUserListener(t)
	tr := &http.Transport{DialContext: Dial((&net.Dialer{}).DialContext, false)}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+"/api", nil)
	req.Header.Set("Authorization", "Bearer secret-token-value")
	_, err := tr.RoundTrip(req)
	r := Refused(err)
	if r == nil || r.Owner.UID != testenv.Nobody || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("request to another user's port: %v", err)
	}
	if got := received(); got != "" {
		t.Fatalf("the other user's listener received %d bytes", len(got))
	}
	if err := Probe(context.Background(), "127.0.0.1", port, false); Refused(err) == nil {
		t.Fatalf("probe of another user's port: %v", err)
	}
	if err := Probe(context.Background(), "localhost", port, false); Refused(err) == nil {
		t.Fatalf("probe of another user's port by name: %v", err)
	}
}

// The user's own listener (root counts too) gets the request; so does a
// non-loopback address, which this check is not about.
func TestAllowsOwnListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err == nil {
			got <- r.Header.Get("Authorization")
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
		}
	}()
	hc := &http.Client{Transport: &SplitTransport{
		Cleartext: &http.Transport{DialContext: Dial((&net.Dialer{}).DialContext, false)},
		Other:     http.DefaultTransport,
	}}
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
	req.Header.Set("Authorization", "Bearer x")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := <-got; a != "Bearer x" {
		t.Fatalf("own listener got Authorization %q", a)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if err := Probe(context.Background(), "127.0.0.1", port, false); err != nil {
		t.Fatalf("probe of own port: %v", err)
	}
}

func TestProbeNobodyListens(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	err := Probe(context.Background(), "127.0.0.1", port, false)
	if err == nil || !strings.Contains(err.Error(), "nobody listens") {
		t.Fatalf("probe of a free port: %v", err)
	}
}

// One log line per destination every LogEvery; every refusal counted.
func TestRefusalsLogOncePerDestination(t *testing.T) {
	var r Refusals
	a := &RefusedError{Addr: "127.0.0.1:1", Owner: tcpowner.Owner{UID: 65534}}
	b := &RefusedError{Addr: "127.0.0.1:2", Owner: tcpowner.Owner{UID: 1000}}
	logs := 0
	for i := 0; i < 5; i++ {
		if log, _ := r.Add(a); log {
			logs++
		}
	}
	if log, _ := r.Add(b); !log {
		t.Fatal("a second destination was not logged")
	}
	if logs != 1 {
		t.Fatalf("%d log lines for 5 refusals to one place within %s", logs, LogEvery)
	}
	snap := r.Snapshot()
	if len(snap) != 2 || snap[0].Addr != "127.0.0.1:1" || snap[0].Count != 5 || snap[0].Owner != "uid 65534" || snap[1].UID != 1000 {
		t.Fatalf("snapshot %+v", snap)
	}
}

func TestUnverifiedWraps(t *testing.T) {
	err := error(&UnverifiedError{Addr: "127.0.0.1:1", Err: tcpowner.ErrNoSocket})
	if !errors.Is(err, tcpowner.ErrNoSocket) || Refused(err) != nil {
		t.Fatal(err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(1)) {
		t.Fatal(err)
	}
}
