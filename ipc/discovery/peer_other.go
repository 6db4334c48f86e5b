//go:build !linux && !darwin && !windows

package discovery

import (
	"errors"
	"runtime"
)

// PeerUID: this OS shows no peer credentials; clients refuse the agent.
func PeerUID(fd uintptr) (int, error) {
	return -1, errors.New("peer credentials are not supported on " + runtime.GOOS)
}
