package filetrust

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/internal/winacl"
)

const systemOwners = "the Administrators"

func mask(deny Access) windows.ACCESS_MASK {
	var m windows.ACCESS_MASK
	if deny&Write != 0 {
		m |= winacl.Write
	}
	if deny&Read != 0 {
		m |= winacl.Read
	}
	return m
}

// Check refuses path when it belongs to an account outside owners, or
// when an ACL entry gives another account an access in deny. The user's
// own files may also belong to SYSTEM or the Administrators, who can take
// any file anyway.
func Check(path string, owners Owners, deny Access) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	return checkName(path, owners, deny)
}

// CheckInfo is Check of path, which fi describes: on Windows the owner
// and ACL are read by name.
func CheckInfo(path string, fi fs.FileInfo, owners Owners, deny Access) error {
	return checkName(path, owners, deny)
}

func checkName(path string, owners Owners, deny Access) error {
	if owners == System {
		return translate(path, winacl.CheckSystem(path), deny)
	}
	return translate(path, winacl.Check(path, mask(deny)), deny)
}

// translate turns winacl's verdict into an *Error.
func translate(path string, err error, deny Access) error {
	var ae *winacl.Error
	if !errors.As(err, &ae) {
		return err
	}
	fi, _ := os.Stat(path)
	e := &Error{Path: path, UID: -1, Detail: ae.Msg, Dir: fi != nil && fi.IsDir(), Msg: ae.Msg}
	switch {
	case ae.Owner != "":
		e.Problem = WrongOwner
	case deny&Read != 0:
		e.Problem = OthersCanRead
	default:
		e.Problem = OthersCanWrite
	}
	return e
}

// CheckPath checks path and the directory it is in. Ancestors further up
// are not: %ProgramData% and the drive's root let every account add
// entries (not rename others'), which an ACL check can't tell from
// "may change".
func CheckPath(path string, owners Owners) (fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	above := UserOrRoot
	if owners == System {
		above = System
	}
	if err := checkName(filepath.Dir(path), above, Write); err != nil {
		return nil, err
	}
	if err := checkName(path, owners, Write); err != nil {
		return nil, err
	}
	return fi, nil
}

// ReadFile reads a regular file nobody outside owners could have written
// or swapped: it opens it once, checks the open file's owner and ACL, the
// directory of the path and of where the open file really is, makes sure
// the path still leads to the file it opened, and reads that open file.
func ReadFile(path string, owners Owners) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	opened, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !opened.Mode().IsRegular() {
		return nil, &Error{Path: path, Problem: NotRegular, UID: -1, Msg: fmt.Sprintf("%s is not a regular file", path)}
	}
	h := windows.Handle(f.Fd())
	if err := translate(path, winacl.CheckHandle(h, path, winacl.Write, owners == System), Write); err != nil {
		return nil, err
	}
	named, err := CheckPath(path, owners)
	if err != nil {
		return nil, err
	}
	if !os.SameFile(opened, named) {
		return nil, &Error{Path: path, Problem: Changed, UID: -1, Msg: fmt.Sprintf("%s was replaced while kc-agent read it", path)}
	}
	if real, err := finalPath(h); err == nil && !strings.EqualFold(filepath.Dir(real), filepath.Dir(path)) {
		above := UserOrRoot
		if owners == System {
			above = System
		}
		if err := checkName(filepath.Dir(real), above, Write); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(f)
}

// finalPath is where an open file really is (links and junctions
// resolved), without the \\?\ prefix.
func finalPath(h windows.Handle) (string, error) {
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n, err := windows.GetFinalPathNameByHandle(h, &buf[0], uint32(len(buf)), 0)
	if err != nil {
		return "", err
	}
	return strings.TrimPrefix(windows.UTF16ToString(buf[:n]), `\\?\`), nil
}

func fix(e *Error, owners Owners) string {
	switch {
	case e.Problem == Changed || e.Problem == NotRegular:
		return ""
	case owners == System:
		return fmt.Sprintf(`icacls %q /setowner Administrators && icacls %q /inheritance:r /grant:r Administrators:F SYSTEM:F Users:RX`, e.Path, e.Path)
	}
	return fmt.Sprintf(`icacls %q /inheritance:r /grant:r "%%USERNAME%%":F`, e.Path)
}
