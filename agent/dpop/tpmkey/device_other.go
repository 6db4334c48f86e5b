//go:build !linux

package tpmkey

import (
	"errors"

	"github.com/google/go-tpm/tpm2/transport"
)

// DefaultPath names no device here: TPM keys are built for Linux only.
const DefaultPath = ""

func openDevice(string) (transport.TPMCloser, error) {
	return nil, errors.New("TPM keys are built for Linux only")
}
