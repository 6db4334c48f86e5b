//go:build linux || windows

package peer

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

// The Linux kernel's socket tables, /proc/net/tcp{,6}: the Linux fallback,
// and under Wine (on Windows builds) the only place that names the owner of
// a socket Wine did not attribute to a process (see LinuxUID).

// LinuxUID is the uid the Linux socket tables under root (normally /proc)
// name for the TCP socket whose local address is local and, when remote is
// not nil, whose remote address is remote; with remote nil, the listener.
func LinuxUID(root string, local, remote *net.TCPAddr) (int, error) {
	if remote == nil {
		return scanProcNetAll(root, local, func(bool) (string, bool) { return "", true }, tcpListen)
	}
	return scanProcNetAll(root, local, func(six bool) (string, bool) { return procAddr(remote, six) }, "")
}

const tcpListen = "0A"

func scanProcNetAll(root string, local *net.TCPAddr, remote func(six bool) (string, bool), state string) (int, error) {
	files := []string{root + "/net/tcp6", root + "/net/tcp"}
	if local.IP.To4() != nil {
		files = []string{root + "/net/tcp", root + "/net/tcp6"}
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
