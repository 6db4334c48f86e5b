package privatefile

import (
	"errors"

	"github.com/kc-agent/kc-agent/internal/winacl"
)

// Check refuses a file that is not the user's, or that an ACL entry lets
// another account read or change (SYSTEM and the Administrators excepted:
// they can take any file anyway).
func Check(path string) error {
	err := winacl.Check(path, winacl.Read|winacl.Write)
	var ae *winacl.Error
	if errors.As(err, &ae) {
		return &ExposedError{Path: path, Detail: ae.Msg}
	}
	return err
}

// ProtectDir gives dir a protected DACL for the user alone, which what is
// created in it inherits.
func ProtectDir(dir string) error { return winacl.Protect(dir) }

// Fix is the command that makes path private again.
func Fix(path string) string {
	return `icacls "` + path + `" /inheritance:r /grant:r "%USERNAME%":F`
}
