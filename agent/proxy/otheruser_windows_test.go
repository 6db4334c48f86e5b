package proxy

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/kc-agent/kc-agent/internal/winsid"
)

// A caller of another account gets nothing from a route: the connection is
// dropped before a byte is read, and the refusal counted. (The account is
// played through the SID lookup; the owning process is really found in
// the TCP table, under Wine too: a connecting socket's process is known.)
func TestRouteRefusesAnotherAccount(t *testing.T) {
	up := newUpstream(t)
	f := startProxy(t, fmt.Sprintf("routes:\n  - name: api\n    upstream: %s/v1\n", up.URL))
	if resp := f.get(t, "/api/x"); resp.StatusCode != 200 {
		t.Fatalf("the user's own call: %d", resp.StatusCode)
	}
	old := winsid.OfProcess
	winsid.OfProcess = func(uint32) (string, error) { return "S-1-5-21-1-2-3-1001", nil }
	defer func() { winsid.OfProcess = old }()
	c, err := net.Dial("tcp", f.main)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /api/x HTTP/1.1\r\nHost: %s\r\n\r\n", f.main)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if data, _ := io.ReadAll(c); len(data) != 0 {
		t.Fatalf("another account got an answer: %q", data)
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("the upstream saw %d requests, want only the user's", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.p.refusals.snapshot()[reasonOtherUser] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("refusals: %v", f.p.refusals.snapshot())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
