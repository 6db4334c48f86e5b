package tpmkey

import (
	"encoding/binary"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

// Response codes after which the TPM asks the caller to send the same
// command again (TPM 2.0 Part 2, 6.6.3): TPM_RC_YIELDED, TPM_RC_TESTING,
// TPM_RC_RETRY.
const (
	rcYielded = 0x908
	rcTesting = 0x90a
	rcRetry   = 0x922
)

// retrying sends a command again, a few times, while the TPM answers
// that it could not start it yet.
type retrying struct{ transport.TPMCloser }

func (r retrying) Send(cmd []byte) ([]byte, error) {
	delay := 10 * time.Millisecond
	for try := 0; ; try++ {
		rsp, err := r.TPMCloser.Send(cmd)
		if err != nil || len(rsp) < 10 || try == 5 {
			return rsp, err
		}
		switch binary.BigEndian.Uint32(rsp[6:10]) {
		case rcYielded, rcTesting, rcRetry:
			time.Sleep(delay)
			delay *= 2
		default:
			return rsp, nil
		}
	}
}
