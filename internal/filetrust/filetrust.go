// Package filetrust answers one question for every file kc-agent trusts
// to steer tokens or to hold them: could anyone but the expected owners
// have written (or read) it? On Unix that is the owner and the write (and
// read) bits of the file and of the directories above it; on Windows the
// owner and the DACL (Go reports every writable file there as 0666, which
// says nothing). The owner set is the caller's: the config, the token
// file and the socket directory are the user's; a CA bundle may be root's
// too; the system-wide config is root's (the Administrators') alone.
package filetrust

import "fmt"

// Owners is who may own a trusted file or directory.
type Owners int

const (
	// User is the current user (on Windows also SYSTEM and the
	// Administrators, who can take any file anyway).
	User Owners = iota
	// UserOrRoot is the user or root: for files the user relies on but
	// may not own, like a CA bundle under /etc.
	UserOrRoot
	// System is root alone (SYSTEM, the Administrators or TrustedInstaller
	// on Windows): for a file that steers every user's tokens.
	System
)

func (o Owners) String() string {
	switch o {
	case User:
		return "you"
	case UserOrRoot:
		return "you or root"
	case System:
		return systemOwners
	}
	return fmt.Sprintf("Owners(%d)", int(o))
}

// Access is what others must not be able to do.
type Access int

const (
	// Write covers rewriting, replacing and re-permissioning.
	Write Access = 1 << iota
	// Read covers reading the contents: for secrets.
	Read
)

// Problem is what makes a file untrusted.
type Problem int

const (
	// WrongOwner: the file belongs to someone outside the owner set.
	WrongOwner Problem = iota + 1
	// OthersCanWrite: group or others (an ACL entry) may change it.
	OthersCanWrite
	// OthersCanRead: group or others (an ACL entry) may read it.
	OthersCanRead
	// NotRegular: a file was expected, and it is not a regular file (or a
	// directory was expected, and it is not one).
	NotRegular
	// Changed: the path led somewhere else after the file was opened.
	Changed
)

// Error says why a file or directory is not trusted.
type Error struct {
	Path    string
	Problem Problem
	// UID is the owner on Unix when it is the problem, else -1.
	UID int
	// Detail is what gives it away: "uid 1004", "mode -rw-rw-rw-", or the
	// Windows account or ACL entry.
	Detail string
	// Dir is true when Path is a directory.
	Dir bool
	Msg string
}

func (e *Error) Error() string { return e.Msg }

// Fix is the command that repairs the file, for a hint; "" for a swap.
func (e *Error) Fix(owners Owners) string { return fix(e, owners) }

func what(dir bool) string {
	if dir {
		return "directory"
	}
	return "file"
}
