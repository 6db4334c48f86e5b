package privatefile

import (
	"github.com/kc-agent/kc-agent/internal/winacl"
)

// ProtectDir gives dir a protected DACL for the user alone, which what is
// created in it inherits.
func ProtectDir(dir string) error { return winacl.Protect(dir) }

// Fix is the command that makes path private again.
func Fix(path string) string {
	return `icacls "` + path + `" /inheritance:r /grant:r "%USERNAME%":F`
}
