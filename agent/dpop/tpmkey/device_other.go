//go:build !linux

package tpmkey

import (
	"os"

	"github.com/google/go-tpm/tpm2/transport"
)

// DefaultPath names no device here: TPM keys are built for Linux only.
const DefaultPath = ""

// notBuilt is os.ErrNotExist (no TPM here: a TPM key copied to this
// machine can never sign) with a message that says why.
type notBuilt struct{}

func (notBuilt) Error() string        { return "TPM keys are built for Linux only" }
func (notBuilt) Is(target error) bool { return target == os.ErrNotExist }

func openDevice(string) (transport.TPMCloser, error) { return nil, notBuilt{} }
