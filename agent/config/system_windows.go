package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kc-agent/kc-agent/internal/winacl"
)

// CheckSystemFile refuses a system-wide config (or its directory) that
// does not belong to the machine's administrators (SYSTEM, the
// Administrators) or that anyone else, the user included, may change:
// whoever can write it decides where every user's tokens go. %ProgramData%
// lets every user create files in a new folder by default, so an
// installer must set the folder's ACL.
func CheckSystemFile(path string) error {
	for _, p := range []string{path, filepath.Dir(path)} {
		if _, err := os.Stat(p); err != nil {
			return &Error{File: path, Msg: fmt.Sprintf("the system-wide config: %v", err)}
		}
		var ae *winacl.Error
		if err := winacl.CheckSystem(p); errors.As(err, &ae) {
			return &Error{File: path, Msg: fmt.Sprintf("the system-wide config: %s; kc-agent refuses it (an administrator must make it the Administrators' alone: icacls %q /inheritance:r /grant:r Administrators:F SYSTEM:F Users:RX)", ae.Msg, p)}
		} else if err != nil {
			return &Error{File: path, Msg: fmt.Sprintf("the system-wide config: %v", err)}
		}
	}
	return nil
}
