//go:build unix

package tpmkey

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// droppingRelay forwards the simulator protocol to addr and drops the
// connection when it sees a command with code cc (the TPM or the device
// failing mid-command: a reset, a resource manager error, a simulator
// restart).
func droppingRelay(t *testing.T, addr string, cc tpm2.TPMCC) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go relay(c, addr, uint32(cc))
		}
	}()
	return l.Addr().String()
}

func relay(c net.Conn, addr string, cc uint32) {
	defer c.Close()
	up, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer up.Close()
	go io.Copy(c, up)
	for {
		// mssim's send command: 4 bytes command, 1 byte locality, 4 bytes
		// length, then the TPM command (its code at bytes 6 to 10).
		hdr := make([]byte, 9)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		cmd := make([]byte, binary.BigEndian.Uint32(hdr[5:9]))
		if _, err := io.ReadFull(c, cmd); err != nil {
			return
		}
		if len(cmd) >= 10 && binary.BigEndian.Uint32(cmd[6:10]) == cc {
			return // the connection drops mid-command
		}
		if _, err := up.Write(append(hdr, cmd...)); err != nil {
			return
		}
	}
}

// A TPM2_Load that fails for another reason than the TPM refusing the
// blobs (here the connection drops) is an *UnavailableError, retried
// later, never ErrOtherTPM (which asks for a new login).
func TestTransportFailureDuringLoadIsNotOtherTPM(t *testing.T) {
	key, dev := newKey(t)
	addr, _ := strings.CutPrefix(string(dev), mssimPrefix)
	flaky := Device(mssimPrefix + droppingRelay(t, addr, tpm2.TPMCCLoad))
	again, err := flaky.Load(key.Blobs())
	if err != nil {
		t.Fatal(err)
	}
	err = again.Check()
	var unavailable *UnavailableError
	if errors.Is(err, ErrOtherTPM) || !errors.As(err, &unavailable) {
		t.Fatalf("a connection that dropped during TPM2_Load: %v (other TPM: %v); want an *UnavailableError", err, errors.Is(err, ErrOtherTPM))
	}
}

// Which TPM2_Load answers mean "not this TPM's key": the TPM's refusals
// of the blobs or their parent (format-1 codes, TPM_RC_SENSITIVE); a busy
// TPM, a lockout, a TPM in failure mode or a transport error may pass.
func TestRefusesBlobs(t *testing.T) {
	const param1, handle1, session1 = 0x040 + 0x100, 0x000 + 0x100, 0x800 + 0x100
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{tpm2.TPMRCIntegrity + param1, true}, // another TPM's SRK wrapped it
		{tpm2.TPMRCSize + param1, true},
		{tpm2.TPMRCValue + param1, true},
		{tpm2.TPMRCHierarchy + handle1, true},
		{tpm2.TPMRCBadAuth + session1, true},
		{tpm2.TPMRCSensitive, true},
		{tpm2.TPMRCLockout, false},
		{tpm2.TPMRCRetry, false},
		{tpm2.TPMRCObjectMemory, false},
		{tpm2.TPMRCSessionMemory, false},
		{tpm2.TPMRCFailure, false},
		{io.ErrUnexpectedEOF, false},
		{nil, false},
	} {
		if got := refusesBlobs(tc.err); got != tc.want {
			t.Errorf("refusesBlobs(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Load returns a key or an error, never panics, whatever a keychain item
// or key file holds (go-tpm's reflective Unmarshal, checkPublic).
func FuzzLoadBlobs(f *testing.F) {
	f.Add([]byte{0, 1, 0}, []byte{0, 1, 0})
	f.Fuzz(func(t *testing.T, pub, priv []byte) {
		Device("").Load(pub, priv)
	})
}
