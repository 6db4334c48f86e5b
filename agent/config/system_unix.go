//go:build unix

package config

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// CheckSystemFile refuses a system-wide config (or its directory) that does
// not belong to root or that group or others can write: whoever can write
// it decides where every user's tokens go.
func CheckSystemFile(path string) error {
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			return &Error{File: path, Msg: fmt.Sprintf("the system-wide config: %v", err)}
		}
		what := "file"
		if fi.IsDir() {
			what = "directory"
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			return &Error{File: path, Msg: fmt.Sprintf("the system-wide config %s %s belongs to uid %d, not to root; kc-agent refuses it (an administrator must chown root %s)", what, p, st.Uid, p)}
		}
		if fi.Mode().Perm()&0o022 != 0 {
			return &Error{File: path, Msg: fmt.Sprintf("the system-wide config %s %s has mode %v: other users could rewrite it and redirect everyone's tokens; kc-agent refuses it (an administrator must chmod go-w %s)", what, p, fi.Mode().Perm(), p)}
		}
	}
	return nil
}
