//go:build unix

package filetrust

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

const systemOwners = "root"

// getuid is the user files are trusted for: a variable, so that tests
// running as root can play a user.
var getuid = os.Getuid

// allows tells whether uid is in the owner set.
func (o Owners) allows(uid int) bool {
	switch o {
	case User:
		return uid == getuid()
	case UserOrRoot:
		return uid == getuid() || uid == 0
	}
	return uid == 0
}

func (o Owners) describe() string {
	switch o {
	case User:
		return fmt.Sprintf("you (uid %d)", getuid())
	case UserOrRoot:
		return fmt.Sprintf("you (uid %d) or root", getuid())
	}
	return "root"
}

// Check refuses path (symbolic links followed) when it belongs to someone
// outside owners, or when group or others have an access in deny.
func Check(path string, owners Owners, deny Access) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return CheckInfo(path, fi, owners, deny)
}

// CheckInfo is Check on what a Stat or Lstat of path returned.
func CheckInfo(path string, fi fs.FileInfo, owners Owners, deny Access) error {
	return checkInfo(path, fi, owners, deny, strict)
}

// lenience is what a directory on the way to a file may have.
type lenience int

const (
	strict lenience = iota
	// sticky: a sticky directory others may write in (like /tmp) passes:
	// they can add names there but not rename or remove ours.
	sticky
	// stickyOrGroup: group write passes too, above the user's own files:
	// homes shared with a group of one (Jupyter's docker images make
	// /home/jovyan group-writable) are the user's choice, and the file
	// and its own directory are still checked strictly.
	stickyOrGroup
)

func checkInfo(path string, fi fs.FileInfo, owners Owners, deny Access, lax lenience) error {
	dir := fi.IsDir()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &Error{Path: path, Problem: WrongOwner, UID: -1, Dir: dir, Msg: fmt.Sprintf("can not tell who owns %s", path)}
	}
	if !owners.allows(int(st.Uid)) {
		return &Error{Path: path, Problem: WrongOwner, UID: int(st.Uid), Dir: dir, Detail: fmt.Sprintf("owner uid %d", st.Uid),
			Msg: fmt.Sprintf("the %s %s belongs to uid %d, not to %s", what(dir), path, st.Uid, owners.describe())}
	}
	perm := fi.Mode().Perm()
	shown := fi.Mode() & (fs.ModeDir | fs.ModePerm)
	writers := perm & 0o022
	if lax == stickyOrGroup && dir {
		writers &^= 0o020
	}
	if deny&Write != 0 && writers != 0 && !(lax >= sticky && dir && fi.Mode()&os.ModeSticky != 0) {
		return &Error{Path: path, Problem: OthersCanWrite, UID: -1, Dir: dir, Detail: fmt.Sprintf("mode %v", shown),
			Msg: fmt.Sprintf("the %s %s has mode %v: other users could change it", what(dir), path, shown)}
	}
	if deny&Read != 0 && perm&0o055 != 0 {
		return &Error{Path: path, Problem: OthersCanRead, UID: -1, Dir: dir, Detail: fmt.Sprintf("mode %v", shown),
			Msg: fmt.Sprintf("the %s %s has mode %v: other users could read it", what(dir), path, shown)}
	}
	return nil
}

// maxHops bounds the symbolic links followed, as the kernel's ELOOP does.
const maxHops = 40

// CheckPath checks every name on the way from / to path, following
// symbolic links and checking the directories of their targets too: each
// must belong to owners or root, and no directory may be writable by
// group or others (sticky ones aside; for the user's files, group-writable
// ones too). The last one, a file or a
// directory, must belong to owners and not be writable by others either.
// Whoever can write a directory on the way can swap what lies below it.
// It returns what the last name is.
func CheckPath(path string, owners Owners) (fs.FileInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	above, lax := UserOrRoot, stickyOrGroup
	if owners == System {
		above, lax = System, sticky
	}
	resolved := "/"
	fi, err := os.Lstat(resolved)
	if err != nil {
		return nil, err
	}
	if err := checkInfo(resolved, fi, above, Write, lax); err != nil {
		return nil, err
	}
	todo := strings.Split(abs, "/")
	for hops := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, name)
		if fi, err = os.Lstat(next); err != nil {
			return nil, err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if hops++; hops > maxHops {
				return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ELOOP}
			}
			if err := checkInfo(next, fi, above, 0, strict); err != nil {
				return nil, err
			}
			target, err := os.Readlink(next)
			if err != nil {
				return nil, err
			}
			if filepath.IsAbs(target) {
				resolved = "/"
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		case fi.IsDir():
			if err := checkInfo(next, fi, above, Write, lax); err != nil {
				return nil, err
			}
		case slices.ContainsFunc(todo, func(s string) bool { return s != "" && s != "." }):
			return nil, &fs.PathError{Op: "open", Path: path, Err: syscall.ENOTDIR}
		}
		resolved = next
	}
	// resolved is now a real path, every directory above it checked; the
	// last name answers to owners alone.
	fi, err = os.Lstat(resolved)
	if err != nil {
		return nil, err
	}
	if err := checkInfo(resolved, fi, owners, Write, strict); err != nil {
		return nil, err
	}
	return fi, nil
}

// ReadFile reads a regular file nobody outside owners could have written
// or swapped: it opens the file once, checks the open file (owner, mode,
// a regular file), then every directory from / to where path leads
// (CheckPath), makes sure that is still the file it opened, and reads
// that same open file. Between a check by name and a read by name, whoever
// can write a directory on the way could swap the file.
func ReadFile(path string, owners Owners) ([]byte, error) {
	// O_NONBLOCK: a FIFO planted at path must not hang the reader.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
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
	if err := checkInfo(path, opened, owners, Write, strict); err != nil {
		return nil, err
	}
	named, err := CheckPath(path, owners)
	if err != nil {
		return nil, err
	}
	if !os.SameFile(opened, named) {
		return nil, &Error{Path: path, Problem: Changed, UID: -1, Msg: fmt.Sprintf("%s was replaced while kc-agent read it", path)}
	}
	data, err := io.ReadAll(f)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return data, nil
}

func fix(e *Error, owners Owners) string {
	switch e.Problem {
	case WrongOwner:
		if owners == User {
			return "chown $(id -un) " + e.Path
		}
		return "chown root " + e.Path
	case OthersCanWrite:
		return "chmod go-w " + e.Path
	case OthersCanRead:
		if e.Dir {
			return "chmod 700 " + e.Path
		}
		return "chmod 600 " + e.Path
	}
	return ""
}
