package tcpowner

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

// socket finds the owner of the TCP socket whose local address is local
// and whose remote address is remote. The proxy asks on every accept:
// sock_diag answers in one lookup; /proc/net/tcp, read whole, is the
// fallback.
func socket(local, remote *net.TCPAddr) (Owner, error) {
	if uid, ok, err := sockDiagUID(local, remote); ok {
		return Owner{UID: uid}, err
	}
	uid, err := procConnUID(local, remote)
	return Owner{UID: uid}, err
}

func procConnUID(local, remote *net.TCPAddr) (int, error) {
	return scanProcNetAll(local, func(six bool) (string, bool) { return procAddr(remote, six) }, "")
}

// Listener finds the owner of the socket listening on addr (a wildcard
// listener on the same port counts: it receives the traffic too).
func Listener(addr *net.TCPAddr) (Owner, error) {
	uid, err := scanProcNetAll(addr, func(bool) (string, bool) { return "", true }, tcpListen)
	if err == nil || !errors.Is(err, ErrNoSocket) {
		return Owner{UID: uid}, err
	}
	for _, any := range []net.IP{net.IPv4zero, net.IPv6zero} {
		if uid, err := scanProcNetAll(&net.TCPAddr{IP: any, Port: addr.Port}, func(bool) (string, bool) { return "", true }, tcpListen); err == nil {
			return Owner{UID: uid}, nil
		}
	}
	return Owner{UID: -1}, fmt.Errorf("nobody listens on %s: %w", addr, ErrNoSocket)
}

// Supported says whether this system shows socket owners.
const Supported = true

const tcpListen = "0A"

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
		if err == nil || !errors.Is(err, ErrNoSocket) {
			return uid, err
		}
	}
	return -1, ErrNoSocket
}

// scanProcNet finds the line with local address wantLocal and, when given,
// remote address wantRemote and state, and returns its uid column.
func scanProcNet(path, wantLocal, wantRemote, state string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return -1, ErrNoSocket
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
	return -1, ErrNoSocket
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
