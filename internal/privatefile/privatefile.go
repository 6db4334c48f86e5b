// Package privatefile tells whether a secret file (the opted-in token
// file, the proxy secret) is the user's alone, in each OS's idiom: the
// mode on Unix, the owner and the ACL on Windows, where Go reports every
// writable file as 0666 and a mode says nothing.
package privatefile

// ExposedError says who else could read or change a secret file.
type ExposedError struct {
	Path string
	// Detail is what gives it away: "mode -rw-r--r--", or the ACL entry.
	Detail string
}

func (e *ExposedError) Error() string { return e.Path + " is readable by others (" + e.Detail + ")" }
