package tpmkey

import (
	"encoding/binary"
	"testing"
)

// fakeTPM answers the given response codes in turn.
type fakeTPM struct {
	codes []uint32
	sent  int
}

func (f *fakeTPM) Send([]byte) ([]byte, error) {
	rsp := []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(rsp[6:], f.codes[f.sent])
	f.sent++
	return rsp, nil
}

func (f *fakeTPM) Close() error { return nil }

// TPM_RC_RETRY, _YIELDED and _TESTING are sent again (swtpm answers
// RETRY now and then); other codes, success or failure, are answered at
// once; a TPM that keeps asking gets its last answer after six tries.
func TestRetrying(t *testing.T) {
	for _, tc := range []struct {
		codes []uint32
		sent  int
		last  uint32
	}{
		{[]uint32{rcRetry, rcYielded, rcTesting, 0}, 4, 0},
		{[]uint32{0x101}, 1, 0x101},
		{[]uint32{rcRetry, rcRetry, rcRetry, rcRetry, rcRetry, rcRetry, rcRetry}, 6, rcRetry},
	} {
		f := &fakeTPM{codes: tc.codes}
		rsp, err := retrying{f}.Send([]byte{1})
		if err != nil || f.sent != tc.sent || binary.BigEndian.Uint32(rsp[6:]) != tc.last {
			t.Errorf("codes %x: sent %d times, answered %x (%v); want %d, %x", tc.codes, f.sent, rsp[6:], err, tc.sent, tc.last)
		}
	}
}
