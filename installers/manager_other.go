//go:build !linux && !darwin && !windows

package installers

import (
	"errors"
	"runtime"
)

// New: other systems have no per-user service support yet.
func New(p Params) (Manager, error) {
	return nil, errors.New("service install is not supported on " + runtime.GOOS + "; " + NoUserManagerHint)
}
