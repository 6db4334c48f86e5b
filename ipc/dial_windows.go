package ipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/Microsoft/go-winio"
	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/ipc/discovery"
)

// dialVerified connects to the agent's named pipe and checks, before a
// byte is written, that the process serving it runs as this user
// (GetNamedPipeServerProcessId, then that process's token): a pipe name is
// first come, first served, so another account could have created it.
// The client asks for anonymous impersonation: the server can not act as
// the caller.
func dialVerified(ctx context.Context, path string, timeout time.Duration) (net.Conn, error) {
	if !discovery.IsPipe(path) {
		return nil, fmt.Errorf("%s is not a named pipe (\\\\.\\pipe\\<name>)", path)
	}
	if timeout <= 0 {
		timeout = 10 * time.Second // all instances busy: winio retries until then
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := winio.DialPipeContext(ctx, path)
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		// The agent's pipe admits its user; a pipe of that name that
		// shuts the user out was made by another account.
		return nil, &discovery.UntrustedError{Path: path, Owner: -1, Msg: fmt.Sprintf("the pipe %s shuts you out: another account created it", path)}
	}
	if err != nil {
		return nil, err
	}
	if err := discovery.CheckPipeServer(path, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
