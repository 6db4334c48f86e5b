package tpmkey

import (
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// DefaultPath is the kernel's TPM 2.0 resource manager: transient objects
// are flushed when the file is closed, and several programs can share it.
const DefaultPath = "/dev/tpmrm0"

func openDevice(path string) (transport.TPMCloser, error) { return linuxtpm.Open(path) }
