package discovery

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/kc-agent/kc-agent/internal/filetrust"
	"github.com/kc-agent/kc-agent/internal/peer"
	"github.com/kc-agent/kc-agent/internal/winacl"
	"github.com/kc-agent/kc-agent/internal/winsid"
)

func currentSID() (string, error) { return winsid.Current() }

// PrepareSocketDir creates dir (the lock's directory: a pipe has none)
// when missing, with a DACL for the user alone, and verifies it.
func PrepareSocketDir(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
		if err := winacl.Protect(dir); err != nil {
			return err
		}
	}
	return CheckSocketDir(dir)
}

// CheckSocketDir verifies that dir belongs to this user (or to SYSTEM or
// the Administrators) and that no other account may write in it.
func CheckSocketDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &UntrustedError{Path: dir, Owner: -1, Msg: fmt.Sprintf("%s is not a directory", dir)}
	}
	err = filetrust.CheckInfo(dir, fi, filetrust.User, filetrust.Write)
	if te := (*filetrust.Error)(nil); errors.As(err, &te) {
		return &UntrustedError{Path: dir, Owner: -1, Msg: "kc-agent's directory " + te.Msg}
	}
	return err
}

// CheckPipeServer verifies that the process serving the pipe c, dialed at
// path, runs as this user: a pipe name is first come, first served, and
// another account may have created it.
func CheckPipeServer(path string, c net.Conn) error {
	o, err := peer.PipeServer(c)
	if err != nil && o.PID == 0 {
		return err // no process to name: the pipe itself failed
	}
	pid, sid := o.PID, o.SID
	me, merr := winsid.Current()
	if merr != nil {
		return merr
	}
	if err != nil {
		return &UntrustedError{Path: path, Owner: -1, Msg: fmt.Sprintf("can not tell who serves %s (pid %d): %v", path, pid, err)}
	}
	if sid != me {
		return &UntrustedError{Path: path, Owner: -1, Msg: fmt.Sprintf("the process serving %s (pid %d) runs as %s (%s), not as you (%s)", path, pid, winsid.Name(sid), sid, me)}
	}
	return nil
}
