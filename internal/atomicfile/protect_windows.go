package atomicfile

import (
	"os"

	"github.com/kc-agent/kc-agent/internal/winacl"
)

// protect: Windows has no modes. A private mode (nothing for group or
// others) becomes a protected DACL for the user alone, set before a byte
// is written; the rename keeps it. Other modes keep the inherited ACL.
func protect(f *os.File, mode os.FileMode) error {
	if mode.Perm()&0o077 != 0 {
		return nil
	}
	return winacl.Protect(f.Name())
}
