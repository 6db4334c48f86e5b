package peer

import "golang.org/x/sys/unix"

// unixUID returns the uid of the process at the other end of the connected
// Unix socket fd (LOCAL_PEERCRED, as getpeereid).
func unixUID(fd uintptr) (int, error) {
	cred, err := unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
