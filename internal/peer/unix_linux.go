package peer

import "syscall"

// unixUID returns the uid of the process at the other end of the connected
// Unix socket fd (SO_PEERCRED).
func unixUID(fd uintptr) (int, error) {
	cred, err := syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
