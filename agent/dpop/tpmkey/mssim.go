package tpmkey

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/kc-agent/kc-agent/agent/cleartext"
)

// mssimPrefix names a TPM simulator (swtpm, the TCG reference simulator)
// that speaks the simulator's TCP protocol on its command port, in place
// of a device path: mssim:127.0.0.1:2321. For tests and simulators only:
// such a TPM is software, its keys no safer than a key file.
const mssimPrefix = "mssim:"

// tpmSendCommand is TPM_SEND_COMMAND of the simulator's TCP protocol
// (TpmTcpProtocol.h in the TCG reference implementation).
const tpmSendCommand = 8

// maxResponse bounds what is read from a simulator: no TPM answer is
// near it.
const maxResponse = 1 << 16

// mssim is a connection to a simulator's command port. The simulator
// must be started already (swtpm --flags startup-clear,not-need-init).
type mssim struct{ conn net.Conn }

// openMssim connects to addr, which must be a loopback address (TPM
// commands are not for the network) where this user's simulator listens:
// every local user can listen on loopback, and a simulator of theirs would
// hold the keys it made (cleartext.Check, the rule for loopback peers).
func openMssim(addr string) (*mssim, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("TPM simulator address %q: %w", addr, err)
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("TPM simulator address %q is not a loopback IP address", addr)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connecting to the TPM simulator: %w", err)
	}
	if err := cleartext.Check(conn, false); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TPM simulator: %w", err)
	}
	return &mssim{conn: conn}, nil
}

// Send frames cmd as TPM_SEND_COMMAND (command, locality 0, length) and
// reads the answer (length, response, then a 4-byte status).
func (m *mssim) Send(cmd []byte) ([]byte, error) {
	m.conn.SetDeadline(time.Now().Add(30 * time.Second))
	hdr := make([]byte, 9, 9+len(cmd))
	binary.BigEndian.PutUint32(hdr[0:4], tpmSendCommand)
	binary.BigEndian.PutUint32(hdr[5:9], uint32(len(cmd)))
	if _, err := m.conn.Write(append(hdr, cmd...)); err != nil {
		return nil, fmt.Errorf("sending to the TPM simulator: %w", err)
	}
	var size [4]byte
	if _, err := io.ReadFull(m.conn, size[:]); err != nil {
		return nil, fmt.Errorf("reading from the TPM simulator: %w", err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n == 0 || n > maxResponse {
		return nil, fmt.Errorf("the TPM simulator answered %d bytes", n)
	}
	rsp := make([]byte, n+4)
	if _, err := io.ReadFull(m.conn, rsp); err != nil {
		return nil, fmt.Errorf("reading from the TPM simulator: %w", err)
	}
	if status := binary.BigEndian.Uint32(rsp[n:]); status != 0 {
		return nil, errors.New("the TPM simulator failed the command")
	}
	return rsp[:n], nil
}

func (m *mssim) Close() error { return m.conn.Close() }
