//go:build unix

package cleartext

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

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
	cmd := exec.Command(setpriv, testenv.AsNobody("/usr/bin/python3", "-c", program)...)
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
