package ipc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/internal/winsid"
	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// PipeSDDL is the named pipe's security descriptor: a protected DACL that
// grants the user sid alone full access (no Everyone, no Administrators,
// no inherited entries).
func PipeSDDL(sid string) string { return "D:P(A;;GA;;;" + sid + ")" }

// Listen creates the agent's named pipe at path. Its first instance is
// created exclusively (go-winio creates it with FILE_CREATE, what
// FILE_FLAG_FIRST_PIPE_INSTANCE asks for): if the name exists, whoever
// made it is found out and Listen fails, as on Unix where a live socket
// or a directory of someone else stops the agent. Remote clients are
// rejected, the DACL admits this user alone, and every accepted
// connection is checked to come from a process of this user.
func Listen(path string, log *slog.Logger) (net.Listener, error) {
	if !discovery.IsPipe(path) {
		return nil, fmt.Errorf("%s is not a named pipe; on Windows the agent listens on %s<name>", path, discovery.PipePrefix)
	}
	me, err := winsid.Current()
	if err != nil {
		return nil, err
	}
	// Dial before listening: Windows refuses a second first instance,
	// but Wine 8 does not, and either way the user learns who is there.
	if taken := pipeTaken(path); taken != nil {
		return nil, taken
	}
	ln, err := winio.ListenPipe(path, &winio.PipeConfig{SecurityDescriptor: PipeSDDL(me), InputBufferSize: 64 << 10, OutputBufferSize: 64 << 10})
	if err != nil {
		if taken := pipeTaken(path); taken != nil {
			return nil, taken
		}
		return nil, fmt.Errorf("creating the named pipe %s: %w", path, err)
	}
	if underWine() {
		if ln, err = occupyPlaceholder(ln, path); err != nil {
			return nil, err
		}
	}
	return &SameUserListener{Listener: ln, Peer: peer.PipeClient, Log: log,
		Refusal: "refused a pipe connection from another user"}, nil
}

var underWine = sync.OnceValue(func() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
})

// occupyPlaceholder works around Wine 8. go-winio's first pipe instance is
// a placeholder that holds the name: Windows keeps it disconnected, and
// clients reach the instances Accept creates. Wine connects the first
// client to the placeholder, which nobody serves, so that client hangs.
// The agent connects to it once itself and holds that connection until
// the listener closes.
func occupyPlaceholder(ln net.Listener, path string) (net.Listener, error) {
	// Generous: a cold Wine prefix on a loaded machine took over 2 s, and
	// over 10 s with a second Wine test running beside it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := winio.DialPipeContext(ctx, path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("occupying the first instance of %s (Wine): %w", path, err)
	}
	return &placeholderListener{Listener: ln, held: c}, nil
}

type placeholderListener struct {
	net.Listener
	held net.Conn
}

func (l *placeholderListener) Close() error {
	l.held.Close()
	return l.Listener.Close()
}

// pipeTaken says who holds path when the pipe can not be created: this
// user's agent (ErrAgentRunning), another account (an UntrustedError), or
// nil when nobody answers.
func pipeTaken(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := dialVerified(ctx, path, 2*time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w (%s)", ErrAgentRunning, path)
	}
	var ue *discovery.UntrustedError
	if errors.As(err, &ue) {
		return ue
	}
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		// Only another account's DACL shuts this user out of a pipe.
		return &discovery.UntrustedError{Path: path, Owner: -1, Msg: fmt.Sprintf("the pipe %s exists and shuts you out: another account created it", path)}
	}
	return nil
}
