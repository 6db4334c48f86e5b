package ipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/internal/testenv"
	"github.com/kc-agent/kc-agent/internal/winsid"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

func testPipe(t *testing.T) string {
	return fmt.Sprintf(`\\.\pipe\kc-agent-test-%d-%d`, windows.GetCurrentProcessId(), time.Now().UnixNano())
}

// serveHealth runs the socket API's server on the agent's pipe at path.
func serveHealth(t *testing.T, path string) *SameUserListener {
	t.Helper()
	ln, err := Listen(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.(*SameUserListener)
}

// The agent's own user reaches it over the pipe, with the HTTP/JSON
// protocol of the Unix socket; the pipe's DACL names this user alone.
func TestPipeServesItsUser(t *testing.T) {
	path := testPipe(t)
	serveHealth(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := NewClientAt(path).Health(ctx); err != nil {
		t.Fatalf("health over the pipe: %v", err)
	}
	me, _ := winsid.Current()
	if got := PipeSDDL(me); got != "D:P(A;;GA;;;"+me+")" {
		t.Fatalf("pipe DACL %s", got)
	}
	c, err := winio.DialPipeAccess(ctx, path, windows.GENERIC_READ|windows.GENERIC_WRITE|windows.READ_CONTROL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sd, err := windows.GetSecurityInfo(windows.Handle(c.(interface{ Fd() uintptr }).Fd()), windows.SE_KERNEL_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatalf("reading the pipe's DACL: %v", err)
	}
	got := sd.String()
	if got == "" && testenv.UnderWine() {
		t.Log("Wine shows no security descriptor for a pipe")
		return
	}
	if !strings.Contains(got, me) || strings.Contains(got, "WD") || strings.Contains(got, ";BU)") || strings.Contains(got, ";BA)") {
		t.Fatalf("the pipe's DACL is %q; want this user alone", got)
	}
}

// A second agent can not create the pipe again (first instance only) and
// is told that an agent runs.
func TestPipeSecondAgentRefused(t *testing.T) {
	path := testPipe(t)
	serveHealth(t, path)
	_, err := Listen(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !errors.Is(err, ErrAgentRunning) {
		t.Fatalf("second Listen: %v, want ErrAgentRunning", err)
	}
}

// A pipe served by another account is refused before a request is sent:
// the client sees an UntrustedError (exit 3), as for a planted socket
// directory on Unix.
func TestPipeServedByAnotherAccountRefused(t *testing.T) {
	path := testPipe(t)
	var requests atomic.Int32
	ln, err := winio.ListenPipe(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) })}
	go srv.Serve(ln)
	defer srv.Close()
	restore := winsid.OfProcess
	winsid.OfProcess = func(uint32) (string, error) { return "S-1-5-21-1-2-3-1001", nil }
	defer func() { winsid.OfProcess = restore }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = NewClientAt(path).Health(ctx)
	if !errors.Is(err, discovery.ErrUntrusted) || !strings.Contains(err.Error(), "S-1-5-21-1-2-3-1001") {
		t.Fatalf("got %v, want an UntrustedError naming the other account", err)
	}
	if _, err := clientFor([]string{path}); !errors.Is(err, discovery.ErrUntrusted) {
		t.Fatalf("discovery: %v, want ErrUntrusted", err)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests reached the squatter", n)
	}
}

// A pipe whose DACL shuts this user out (someone else's) is refused the
// same way, by the client and by an agent that wants to listen there.
func TestPipeOfAnotherAccountShutsUsOut(t *testing.T) {
	if testenv.UnderWine() {
		t.Skip("Wine 8 has one account and does not apply a pipe's DACL to it")
	}
	path := testPipe(t)
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{SecurityDescriptor: "D:P(A;;GA;;;S-1-5-21-1-2-3-1001)"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = NewClientAt(path).Health(ctx)
	if errors.Is(err, discovery.ErrUntrusted) {
		_, lerr := Listen(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if !errors.Is(lerr, discovery.ErrUntrusted) {
			t.Fatalf("an agent listening on another account's pipe: %v", lerr)
		}
		return
	}
	t.Fatalf("got %v, want ErrUntrusted", err)
}

// The server refuses a client of another account before reading a byte.
func TestPipeRefusesAnotherAccountsClient(t *testing.T) {
	path := testPipe(t)
	ln := serveHealth(t, path)
	var refused atomic.Int32
	ln.OnRefuse = func() { refused.Add(1) }
	// Play another account for the server's lookup (the raw dial below
	// does not check the server).
	restore := winsid.OfProcess
	winsid.OfProcess = func(uint32) (string, error) { return "S-1-5-21-1-2-3-1001", nil }
	defer func() { winsid.OfProcess = restore }()
	c, err := winio.DialPipe(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/health HTTP/1.1\r\nHost: %s\r\n\r\n", Host)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	data, _ := io.ReadAll(c)
	if len(data) != 0 {
		t.Fatalf("another account's client got an answer: %q", data)
	}
	if refused.Load() != 1 {
		t.Fatalf("refusals: %d", refused.Load())
	}
}
