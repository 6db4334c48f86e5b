//go:build unix && !linux && !darwin

package peer

import (
	"errors"
	"runtime"
)

// unixUID: this OS shows no peer credentials; the agent refuses its
// callers and clients refuse the agent.
func unixUID(fd uintptr) (int, error) {
	return -1, errors.New("peer credentials are not supported on " + runtime.GOOS)
}
