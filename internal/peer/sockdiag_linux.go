package peer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// sockDiagUID asks the kernel (NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY) for
// the uid owning the TCP socket whose local address is local and whose
// remote address is remote: one lookup by 4-tuple, where /proc/net/tcp
// makes the kernel print, and us read, every socket on the machine (a few
// thousand after a burst of short connections: milliseconds per accept).
// ok false when sock_diag is not available here (the caller falls back to
// /proc); err ErrNoSocket when no such socket exists.
func sockDiagUID(local, remote *net.TCPAddr) (uid int, ok bool, err error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.NETLINK_INET_DIAG)
	if err != nil {
		return -1, false, nil
	}
	defer syscall.Close(fd)
	tv := syscall.Timeval{Sec: 1}
	if syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv) != nil {
		return -1, false, nil
	}
	families := []uint8{syscall.AF_INET6}
	if local.IP.To4() != nil && remote.IP.To4() != nil {
		// An IPv4 connection: the client's socket is AF_INET, or an
		// AF_INET6 one speaking IPv4-mapped addresses.
		families = []uint8{syscall.AF_INET, syscall.AF_INET6}
	}
	for _, family := range families {
		uid, found, err := sockDiagQuery(fd, family, local, remote)
		if err != nil {
			return -1, false, nil
		}
		if found {
			return uid, true, nil
		}
	}
	return -1, true, ErrNoSocket
}

const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	nlmsgHdrLen      = 16
	diagReqLen       = 56 // struct inet_diag_req_v2
	diagUIDOffset    = 64 // uid in struct inet_diag_msg
)

// sockDiagQuery sends one exact lookup. found false: no such socket.
func sockDiagQuery(fd int, family uint8, local, remote *net.TCPAddr) (uid int, found bool, err error) {
	req := make([]byte, nlmsgHdrLen+diagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], syscall.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1) // seq
	r := req[nlmsgHdrLen:]
	r[0], r[1] = family, syscall.IPPROTO_TCP
	ne.PutUint32(r[4:], 0xffffffff) // every state
	id := r[8:]                     // struct inet_diag_sockid
	binary.BigEndian.PutUint16(id[0:], uint16(local.Port))
	binary.BigEndian.PutUint16(id[2:], uint16(remote.Port))
	if !putDiagAddr(id[4:20], local.IP, family) || !putDiagAddr(id[20:36], remote.IP, family) {
		return -1, false, nil
	}
	ne.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], 0xffffffff)
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return -1, false, err
	}
	buf := make([]byte, 4096)
	n, _, err := syscall.Recvfrom(fd, buf, 0)
	if err != nil {
		return -1, false, err
	}
	msg := buf[:n]
	if len(msg) < nlmsgHdrLen {
		return -1, false, errors.New("sock_diag: short answer")
	}
	switch typ := ne.Uint16(msg[4:]); {
	case typ == syscall.NLMSG_ERROR && len(msg) >= nlmsgHdrLen+4:
		if errno := -int32(ne.Uint32(msg[nlmsgHdrLen:])); errno == int32(syscall.ENOENT) {
			return -1, false, nil
		} else {
			return -1, false, fmt.Errorf("sock_diag: %w", syscall.Errno(errno))
		}
	case typ == sockDiagByFamily && len(msg) >= nlmsgHdrLen+diagUIDOffset+4:
		return int(ne.Uint32(msg[nlmsgHdrLen+diagUIDOffset:])), true, nil
	}
	return -1, false, errors.New("sock_diag: unexpected answer")
}

// putDiagAddr writes ip as the kernel's inet_diag_sockid holds it: four
// bytes for AF_INET, sixteen (IPv4 mapped when need be) for AF_INET6.
func putDiagAddr(dst []byte, ip net.IP, family uint8) bool {
	if family == syscall.AF_INET {
		v4 := ip.To4()
		if v4 == nil {
			return false
		}
		copy(dst, v4)
		return true
	}
	v6 := ip.To16()
	if v6 == nil {
		return false
	}
	copy(dst, v6)
	return true
}
