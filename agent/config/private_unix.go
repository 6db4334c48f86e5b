//go:build !windows

package config

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// CheckPrivate refuses a file or directory that another user could have
// written: owned by another uid, or writable by group or others. The config
// decides where tokens go; whoever can write it can redirect them.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	what := "file"
	if fi.IsDir() {
		what = "directory"
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return &Error{File: path, Msg: fmt.Sprintf("the config %s belongs to uid %d, not to you (uid %d); kc-agent refuses a config someone else controls (chown it, or move it away and log in again)", what, st.Uid, os.Getuid())}
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return &Error{File: path, Msg: fmt.Sprintf("the config %s has mode %v: other users could rewrite it and redirect your tokens; run chmod go-w %s", what, fi.Mode().Perm(), path)}
	}
	return nil
}

// CheckTrusted refuses a file another user could have written: it and its
// directory must belong to the user or to root, and not be writable by
// group or others. For files the user relies on but may not own, like a
// CA bundle under /etc.
func CheckTrusted(path string) error {
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() && st.Uid != 0 {
			return fmt.Errorf("%s belongs to uid %d; only a file of yours or root's is trusted", p, st.Uid)
		}
		if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
			return fmt.Errorf("%s has mode %v: other users could change it (chmod go-w)", p, fi.Mode().Perm())
		}
	}
	return nil
}
