//go:build !linux

package tpmkey

import (
	"errors"
	"os"
	"testing"
)

// Outside Linux there is no TPM to use: making a key fails as a missing
// device does (a TPM key copied here can never sign), and says why.
func TestNoTPMOutsideLinux(t *testing.T) {
	_, err := Device("").Generate()
	if !errors.Is(err, os.ErrNotExist) || err.Error() != "the TPM can not be used: TPM keys are built for Linux only" {
		t.Fatalf("Generate outside Linux: %v", err)
	}
}
