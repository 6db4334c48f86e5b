package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kc-agent/kc-agent/internal/winacl"
)

// CheckPrivate refuses a file or directory that another account could
// have written: owned by someone other than the user (or SYSTEM or the
// Administrators), or with an ACL entry that lets another account write
// it. The config decides where tokens go; whoever can write it can
// redirect them. Go's 0666 for every writable file says nothing here.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	what := "file"
	if fi.IsDir() {
		what = "directory"
	}
	var ae *winacl.Error
	if err := winacl.Check(path, winacl.Write); errors.As(err, &ae) {
		return &Error{File: path, Msg: fmt.Sprintf("the config %s is not yours alone: %s; other accounts could rewrite it and redirect your tokens (remove their access: icacls %q /inheritance:r /grant:r \"%%USERNAME%%\":F)", what, ae.Msg, path)}
	} else if err != nil {
		return err
	}
	return nil
}

// CheckTrusted refuses a file another account could have written: it and
// its directory must belong to the user, SYSTEM or the Administrators, and
// no ACL entry may let anyone else write them. For files the user relies
// on but may not own, like a CA bundle an administrator installed.
func CheckTrusted(path string) error {
	for _, p := range []string{path, filepath.Dir(path)} {
		if _, err := os.Stat(p); err != nil {
			return err
		}
		if err := winacl.Check(p, winacl.Write); err != nil {
			return fmt.Errorf("%w: only a file of yours, SYSTEM's or the Administrators' that nobody else can change is trusted", err)
		}
	}
	return nil
}
