package proxy

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

// tcpPeerUID finds the uid owning the client end of a loopback TCP
// connection: the socket whose local address is the client's and whose
// remote address is ours, in /proc/net/tcp or /proc/net/tcp6.
func tcpPeerUID(server, client *net.TCPAddr) (int, error) {
	files := []string{"/proc/net/tcp6", "/proc/net/tcp"}
	if client.IP.To4() != nil {
		files = []string{"/proc/net/tcp", "/proc/net/tcp6"}
	}
	for _, f := range files {
		uid, err := scanProcNet(f, client, server)
		if err == nil {
			return uid, nil
		}
		if !errors.Is(err, errNoEntry) {
			return -1, err
		}
	}
	return -1, fmt.Errorf("no socket %s -> %s in /proc/net/tcp*", client, server)
}

var errNoEntry = errors.New("no entry")

func scanProcNet(path string, local, remote *net.TCPAddr) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return -1, errNoEntry
	}
	defer f.Close()
	six := strings.HasSuffix(path, "6")
	wantLocal, ok1 := procAddr(local, six)
	wantRemote, ok2 := procAddr(remote, six)
	if !ok1 || !ok2 {
		return -1, errNoEntry
	}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		if strings.EqualFold(fields[1], wantLocal) && strings.EqualFold(fields[2], wantRemote) {
			return strconv.Atoi(fields[7])
		}
	}
	return -1, errNoEntry
}

// procAddr renders an address the way /proc/net/tcp{,6} prints it: the IP
// as 32-bit words in host (little-endian) order, then the port in hex.
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
		binary.LittleEndian.PutUint32(out[i:], binary.BigEndian.Uint32(ip[i:]))
	}
	return strings.ToUpper(hex.EncodeToString(out)) + ":" + fmt.Sprintf("%04X", a.Port), true
}
