package ipc

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Who owns a loopback TCP socket, from sock_diag (sockdiag_linux.go) or
// /proc/net/tcp{,6}: the proxy uses it
// to refuse other users' connections, and clients to check that the proxy
// address the agent gave them is really served by this user.

// TCPConnUID finds the uid owning the client end of a loopback TCP
// connection: the socket whose local address is client and whose remote
// address is server. The proxy asks on every accept: sock_diag answers in
// one lookup; /proc/net/tcp, read whole, is the fallback.
func TCPConnUID(server, client *net.TCPAddr) (int, error) {
	if uid, ok, err := sockDiagUID(client, server); ok {
		return uid, err
	}
	return procConnUID(server, client)
}

func procConnUID(server, client *net.TCPAddr) (int, error) {
	return scanProcNetAll(client, func(six bool) (string, bool) { return procAddr(server, six) }, "")
}

// TCPListenerUID finds the uid owning the socket listening on addr (a
// wildcard listener on the same port counts: it receives the traffic too).
func TCPListenerUID(addr *net.TCPAddr) (int, error) {
	uid, err := scanProcNetAll(addr, func(bool) (string, bool) { return "", true }, tcpListen)
	if err == nil || !errors.Is(err, errNoEntry) {
		return uid, err
	}
	for _, any := range []net.IP{net.IPv4zero, net.IPv6zero} {
		if uid, err := scanProcNetAll(&net.TCPAddr{IP: any, Port: addr.Port}, func(bool) (string, bool) { return "", true }, tcpListen); err == nil {
			return uid, nil
		}
	}
	return -1, fmt.Errorf("nobody listens on %s: %w", addr, errNoEntry)
}

// ErrNoListener means no socket listens on the address.
var ErrNoListener = errNoEntry

const tcpListen = "0A"

var errNoEntry = errors.New("no such socket in /proc/net/tcp*")

func scanProcNetAll(local *net.TCPAddr, remote func(six bool) (string, bool), state string) (int, error) {
	files := []string{"/proc/net/tcp6", "/proc/net/tcp"}
	if local.IP.To4() != nil {
		files = []string{"/proc/net/tcp", "/proc/net/tcp6"}
	}
	for _, f := range files {
		six := strings.HasSuffix(f, "6")
		wantLocal, ok1 := procAddr(local, six)
		wantRemote, ok2 := remote(six)
		if !ok1 || !ok2 {
			continue
		}
		uid, err := scanProcNet(f, wantLocal, wantRemote, state)
		if err == nil || !errors.Is(err, errNoEntry) {
			return uid, err
		}
	}
	return -1, errNoEntry
}

// scanProcNet finds the line with local address wantLocal and, when given,
// remote address wantRemote and state, and returns its uid column.
func scanProcNet(path, wantLocal, wantRemote, state string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return -1, errNoEntry
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		if !strings.EqualFold(fields[1], wantLocal) {
			continue
		}
		if wantRemote != "" && !strings.EqualFold(fields[2], wantRemote) {
			continue
		}
		if state != "" && fields[3] != state {
			continue
		}
		return strconv.Atoi(fields[7])
	}
	return -1, errNoEntry
}

// procAddr renders an address the way /proc/net/tcp{,6} prints it: the IP
// as the kernel's 32-bit words printed in this machine's byte order, then
// the port in hex.
func procAddr(a *net.TCPAddr, six bool) (string, bool) {
	var ip []byte
	if six {
		ip = a.IP.To16()
	} else {
		ip = a.IP.To4()
	}
	if ip == nil {
		return "", false
	}
	out := make([]byte, len(ip))
	for i := 0; i < len(ip); i += 4 {
		// The kernel keeps each word in network order in memory and prints
		// it as a native integer: reading it natively gives the digits.
		binary.BigEndian.PutUint32(out[i:], binary.NativeEndian.Uint32(ip[i:]))
	}
	return strings.ToUpper(hex.EncodeToString(out)) + ":" + fmt.Sprintf("%04X", a.Port), true
}

// ListenerOwnerKnown says whether TCPListenerUID works here.
const ListenerOwnerKnown = true
