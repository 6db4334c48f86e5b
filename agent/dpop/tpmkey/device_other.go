//go:build !linux

package tpmkey

import (
	"fmt"
	"os"

	"github.com/google/go-tpm/tpm2/transport"
)

// DefaultPath names no device here: TPM keys are built for Linux only.
const DefaultPath = ""

// openDevice finds no TPM outside Linux (os.ErrNotExist: a TPM key copied
// here can never sign).
func openDevice(string) (transport.TPMCloser, error) {
	return nil, fmt.Errorf("TPM keys are built for Linux only: %w", os.ErrNotExist)
}
