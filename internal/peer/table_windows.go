package peer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/kc-agent/kc-agent/internal/winsid"
)

// Visible says whether this system shows socket owners.
const Visible = true

var procGetExtendedTcpTable = windows.NewLazySystemDLL("iphlpapi.dll").NewProc("GetExtendedTcpTable")

const (
	tcpTableOwnerPIDAll = 5 // TCP_TABLE_OWNER_PID_ALL
	mibTCPStateListen   = 2 // MIB_TCP_STATE_LISTEN
	row4Size            = 24
	row6Size            = 56
)

// tcpRow is one row of the owner-PID TCP tables, either family.
type tcpRow struct {
	local, remote net.TCPAddr
	state         uint32
	pid           uint32
}

// tcpTable reads the TCP table of one address family (windows.AF_INET or
// AF_INET6) with each socket's owning process.
func tcpTable(family uint32) ([]tcpRow, error) {
	if err := procGetExtendedTcpTable.Find(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	size := uint32(16 << 10)
	var buf []byte
	for range 8 {
		buf = make([]byte, size)
		r, _, _ := procGetExtendedTcpTable.Call(uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0, uintptr(family), tcpTableOwnerPIDAll, 0)
		switch windows.Errno(r) {
		case windows.ERROR_SUCCESS:
			return parseTCPTable(buf[:size], family)
		case windows.ERROR_INSUFFICIENT_BUFFER:
			size += 4 << 10 // the table may grow between the calls
			continue
		default:
			return nil, fmt.Errorf("GetExtendedTcpTable: %w", windows.Errno(r))
		}
	}
	return nil, errors.New("GetExtendedTcpTable: the table keeps growing")
}

// parseTCPTable decodes MIB_TCPTABLE_OWNER_PID (rows of six DWORDs) or
// MIB_TCP6TABLE_OWNER_PID. Ports are in network order in the low 16 bits
// of their DWORD; the rest is little-endian.
func parseTCPTable(b []byte, family uint32) ([]tcpRow, error) {
	if len(b) < 4 {
		return nil, errors.New("GetExtendedTcpTable: short table")
	}
	n := int(binary.LittleEndian.Uint32(b))
	rowSize := row4Size
	if family == windows.AF_INET6 {
		rowSize = row6Size
	}
	if n < 0 || 4+n*rowSize > len(b) {
		return nil, fmt.Errorf("GetExtendedTcpTable: %d rows do not fit in %d bytes", n, len(b))
	}
	port := func(p []byte) int { return int(p[0])<<8 | int(p[1]) }
	rows := make([]tcpRow, n)
	for i := range rows {
		r := b[4+i*rowSize : 4+(i+1)*rowSize]
		if family == windows.AF_INET6 {
			rows[i] = tcpRow{
				local:  net.TCPAddr{IP: net.IP(append([]byte(nil), r[0:16]...)), Port: port(r[20:24])},
				remote: net.TCPAddr{IP: net.IP(append([]byte(nil), r[24:40]...)), Port: port(r[44:48])},
				state:  binary.LittleEndian.Uint32(r[48:52]),
				pid:    binary.LittleEndian.Uint32(r[52:56]),
			}
			continue
		}
		rows[i] = tcpRow{
			state:  binary.LittleEndian.Uint32(r[0:4]),
			local:  net.TCPAddr{IP: net.IPv4(r[4], r[5], r[6], r[7]), Port: port(r[8:12])},
			remote: net.TCPAddr{IP: net.IPv4(r[12], r[13], r[14], r[15]), Port: port(r[16:20])},
			pid:    binary.LittleEndian.Uint32(r[20:24]),
		}
	}
	return rows, nil
}

func families(ip net.IP) []uint32 {
	if ip.To4() != nil {
		// A dual-stack socket shows a v4 peer as ::ffff:a.b.c.d.
		return []uint32{windows.AF_INET, windows.AF_INET6}
	}
	return []uint32{windows.AF_INET6}
}

func sameAddr(a, b *net.TCPAddr) bool { return a.Port == b.Port && a.IP.Equal(b.IP) }

// socket finds the owner of the TCP socket whose local address is local
// and whose remote address is remote: its owning process, then that
// process's user. A socket whose process is gone or can not be opened has
// no owner (an error): the caller refuses it.
func socket(local, remote *net.TCPAddr) (Owner, error) {
	return find(local, remote, func(r *tcpRow) bool { return r.state != mibTCPStateListen && sameAddr(&r.remote, remote) })
}

// Listener finds the owner of the socket listening on addr (a wildcard
// listener on the same port counts: it receives the traffic too).
func TCPListener(addr *net.TCPAddr) (Owner, error) {
	o, err := find(addr, nil, func(r *tcpRow) bool { return r.state == mibTCPStateListen })
	if err == nil || !errors.Is(err, ErrNoSocket) {
		return o, err
	}
	for _, any := range []net.IP{net.IPv4zero, net.IPv6zero} {
		if o, err := find(&net.TCPAddr{IP: any, Port: addr.Port}, nil, func(r *tcpRow) bool { return r.state == mibTCPStateListen }); err == nil {
			return o, nil
		}
	}
	return Owner{UID: -1}, fmt.Errorf("nobody listens on %s: %w", addr, ErrNoSocket)
}

// Unattributed, when set, names the owner of a socket the table lists with
// no owning process (local; remote is nil for a listener). Nil in the
// shipped program: such a socket has no owner and is refused. Tests under
// Wine 8, which attributes no listening or accepted socket to a process,
// set it to ask Linux (wineowner.UseLinuxOwnersUnderWine).
var Unattributed func(local, remote *net.TCPAddr) (Owner, error)

func find(local, remote *net.TCPAddr, match func(*tcpRow) bool) (Owner, error) {
	for _, fam := range families(local.IP) {
		rows, err := tcpTable(fam)
		if err != nil {
			return Owner{UID: -1}, err
		}
		for i := range rows {
			r := &rows[i]
			if !sameAddr(&r.local, local) || !match(r) {
				continue
			}
			if r.pid == 0 && Unattributed != nil {
				return Unattributed(local, remote)
			}
			if r.pid == 0 {
				return Owner{UID: -1}, fmt.Errorf("the socket %s has no owning process: %w", local, ErrNoOwner)
			}
			sid, err := winsid.OfProcess(r.pid)
			if err != nil {
				return Owner{UID: -1, PID: int(r.pid)}, fmt.Errorf("%w: %v", ErrNoOwner, err)
			}
			return Owner{UID: -1, SID: sid, PID: int(r.pid)}, nil
		}
	}
	return Owner{UID: -1}, fmt.Errorf("no TCP socket %s: %w", local, ErrNoSocket)
}
