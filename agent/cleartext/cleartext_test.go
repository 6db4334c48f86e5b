package cleartext

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/internal/testenv"
)

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
	if testenv.UnderWine() && errors.Is(err, peer.ErrNoOwner) {
		t.Skipf("Wine 8 names no owner for a listening or accepted socket: %v", err)
	}
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
	a := &RefusedError{Addr: "127.0.0.1:1", Owner: peer.Owner{UID: 65534}}
	b := &RefusedError{Addr: "127.0.0.1:2", Owner: peer.Owner{UID: 1000}}
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
	err := error(&UnverifiedError{Addr: "127.0.0.1:1", Err: peer.ErrNoSocket})
	if !errors.Is(err, peer.ErrNoSocket) || Refused(err) != nil {
		t.Fatal(err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(1)) {
		t.Fatal(err)
	}
}

// The one rule, case by case: what the owner lookup says, and what the
// opt-in (unsafe_cleartext_issuer / unsafe_cleartext_upstream: one
// meaning) changes. Root counts as "can't be named" (its socket may be
// handed to another user); another known user is refused, opt-in or not.
// "You" is uid 1000 here, so that root is someone else even when the
// tests run as root.
func TestDecide(t *testing.T) {
	me, root, other, unknown := peer.Owner{UID: 1000}, peer.Owner{UID: 0}, peer.Owner{UID: 65534}, peer.Owner{UID: -1}
	if runtime.GOOS == "windows" {
		root = peer.Owner{UID: -1, SID: "S-1-5-18"} // LocalSystem: Windows's root
	}
	self := func(o peer.Owner) bool { return o.SID == "" && o.UID == 1000 }
	listens := func(o peer.Owner, err error) func() (peer.Owner, error) {
		return func() (peer.Owner, error) { return o, err }
	}
	none := listens(unknown, peer.ErrNoSocket)
	cases := []struct {
		name     string
		o        peer.Owner
		err      error
		listener func() (peer.Owner, error)
		allow    bool
		want     string // "", "refused", "unverified"
	}{
		{"mine", me, nil, none, false, ""},
		{"other", other, nil, none, false, "refused"},
		{"other, opted in", other, nil, none, true, "refused"},
		{"no socket", unknown, peer.ErrNoSocket, none, false, "unverified"},
		{"no socket, opted in", unknown, peer.ErrNoSocket, none, true, "unverified"},
		{"no owner", unknown, peer.ErrNoOwner, none, false, "unverified"},
		{"no owner, opted in", unknown, peer.ErrNoOwner, none, true, ""},
		{"unsupported", unknown, peer.ErrUnsupported, none, false, "unverified"},
		{"unsupported, opted in", unknown, peer.ErrUnsupported, none, true, ""},
		{"root listener", root, nil, listens(root, nil), false, "refused"},
		{"root listener, opted in", root, nil, listens(root, nil), true, ""},
		{"root, nobody listens", root, nil, none, false, "refused"},
		{"not yet accepted by my listener", root, nil, listens(me, nil), false, ""},
		{"root socket, another user's listener", root, nil, listens(other, nil), false, "refused"},
	}
	for _, c := range cases {
		err := decide("127.0.0.1:1", c.o, c.err, c.listener, self, c.allow)
		var unverified *UnverifiedError
		got := ""
		switch {
		case Refused(err) != nil:
			got = "refused"
		case errors.As(err, &unverified):
			got = "unverified"
		case err != nil:
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	if msg := (&RefusedError{Addr: "127.0.0.1:1", Owner: root}).Error(); !strings.Contains(msg, "unsafe_cleartext_upstream") {
		t.Errorf("the refusal of a root listener does not name the opt-in: %s", msg)
	}
}
