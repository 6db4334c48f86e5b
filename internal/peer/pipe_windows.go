package peer

import (
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/internal/winsid"
)

type fdConn interface{ Fd() uintptr }

// PipeClient finds the user of the process at the other end of an
// accepted named pipe connection (GetNamedPipeClientProcessId, then that
// process's token).
func PipeClient(c net.Conn) (Owner, error) {
	return pipeEnd(c, "GetNamedPipeClientProcessId", windows.GetNamedPipeClientProcessId)
}

// PipeServer finds the user of the process serving a dialed named pipe
// (GetNamedPipeServerProcessId, then that process's token). A pipe name is
// first come, first served: another account may have created it. When the
// process is known but its user is not, the Owner carries the PID.
func PipeServer(c net.Conn) (Owner, error) {
	return pipeEnd(c, "GetNamedPipeServerProcessId", windows.GetNamedPipeServerProcessId)
}

func pipeEnd(c net.Conn, call string, pidOf func(windows.Handle, *uint32) error) (Owner, error) {
	f, ok := c.(fdConn)
	if !ok {
		return Owner{UID: -1}, errors.New("not a named pipe connection")
	}
	var pid uint32
	if err := pidOf(windows.Handle(f.Fd()), &pid); err != nil {
		return Owner{UID: -1}, fmt.Errorf("%s: %w", call, err)
	}
	// winsid.OfProcess is a variable: tests play another account with it.
	sid, err := winsid.OfProcess(pid)
	if err != nil {
		return Owner{UID: -1, PID: int(pid)}, err
	}
	return Owner{UID: -1, SID: sid, PID: int(pid)}, nil
}
