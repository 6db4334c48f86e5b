package config

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/kc-agent/kc-agent/internal/filetrust"
)

// others is who else could change a file, in the platform's words.
func others() string {
	if runtime.GOOS == "windows" {
		return "other accounts"
	}
	return "other users"
}

// CheckPrivate refuses a file or directory that another user could have
// written: owned by someone else, or writable by group or others (an ACL
// entry on Windows). The config decides where tokens go; whoever can
// write it can redirect them.
func CheckPrivate(path string) error {
	return privateError(path, filetrust.Check(path, filetrust.User, filetrust.Write))
}

// privateError words filetrust's verdict on the user's config.
func privateError(path string, err error) error {
	var te *filetrust.Error
	if !errors.As(err, &te) {
		return err
	}
	what := "file"
	if te.Dir {
		what = "directory"
	}
	fix := te.Fix(filetrust.User)
	if te.Problem == filetrust.WrongOwner {
		return &Error{File: path, Msg: fmt.Sprintf("the config %s is not yours: %s; kc-agent refuses a config someone else controls (%s, or move it away and log in again)", what, te.Msg, fix), err: te}
	}
	if fix == "" {
		return &Error{File: path, Msg: fmt.Sprintf("the config %s: %s; read it again once nobody else can change it", what, te.Msg), err: te}
	}
	return &Error{File: path, Msg: fmt.Sprintf("the config %s: %s; %s could rewrite it and redirect your tokens (run %s)", what, te.Msg, others(), fix), err: te}
}

// CheckTrusted refuses a file another user could have written: it and
// every directory above it must belong to the user or to root and not be
// writable by others. For files the user relies on but may not own, like a
// CA bundle under /etc.
func CheckTrusted(path string) error {
	_, err := filetrust.CheckPath(path, filetrust.UserOrRoot)
	var te *filetrust.Error
	if errors.As(err, &te) {
		return fmt.Errorf("%w; only a file of yours or root's that nobody else can change is trusted (%s)", te, te.Fix(filetrust.UserOrRoot))
	}
	return err
}

// systemError words filetrust's verdict on the system-wide file.
func systemError(path string, err error) error {
	var te *filetrust.Error
	if !errors.As(err, &te) {
		return &Error{File: path, Msg: fmt.Sprintf("reading the system-wide config: %v", errors.Unwrap(err)), err: err}
	}
	msg := fmt.Sprintf("the system-wide config: %s", te.Msg)
	if te.Problem != filetrust.WrongOwner && te.Problem != filetrust.NotRegular {
		msg += fmt.Sprintf("; %s could rewrite it and redirect everyone's tokens", others())
	}
	if fix := te.Fix(filetrust.System); fix != "" {
		msg += fmt.Sprintf("; kc-agent ignores it (an administrator must run %s)", fix)
	} else {
		msg += "; kc-agent ignores it"
	}
	return &Error{File: path, Msg: msg, err: te}
}
