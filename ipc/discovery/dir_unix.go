//go:build unix

package discovery

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/kc-agent/kc-agent/internal/filetrust"
	"github.com/kc-agent/kc-agent/internal/peer"
)

func currentSID() (string, error) { return "", nil }

// PrepareSocketDir creates dir (0700) when missing and verifies it.
func PrepareSocketDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating socket directory: %w", err)
	}
	return CheckSocketDir(dir)
}

// CheckSocketDir verifies that dir belongs to this user and nobody else can
// enter it: a socket in a shared directory could be swapped by someone else.
func CheckSocketDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &UntrustedError{Path: dir, Owner: -1, Msg: fmt.Sprintf("socket directory %s is not a directory", dir)}
	}
	var te *filetrust.Error
	switch err := filetrust.CheckInfo(dir, fi, filetrust.User, filetrust.Read|filetrust.Write); {
	case !errors.As(err, &te):
		return err
	case te.Problem == filetrust.WrongOwner:
		return &UntrustedError{Path: dir, Owner: te.UID, Msg: fmt.Sprintf("socket directory %s belongs to uid %d, not to you (uid %d)", dir, te.UID, os.Getuid())}
	default:
		return &UntrustedError{Path: dir, Owner: os.Getuid(), Msg: fmt.Sprintf("socket directory %s has mode %v; it must be 0700", dir, fi.Mode().Perm())}
	}
}

// CheckPeer verifies that the process at the other end of the connection
// c, dialed at path, runs as this user: file modes alone do not stop
// another user who created the directory first.
func CheckPeer(path string, c net.Conn) error {
	o, err := peer.Unix(c)
	uid := o.UID
	if err != nil {
		return &UntrustedError{Path: path, Owner: -1, Msg: fmt.Sprintf("can not tell who serves %s: %v", path, err)}
	}
	if uid != os.Getuid() {
		return &UntrustedError{Path: path, Owner: uid, Msg: fmt.Sprintf("the process serving %s runs as uid %d, not as you (uid %d)", path, uid, os.Getuid())}
	}
	return nil
}
