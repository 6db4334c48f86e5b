package privatefile

import (
	"errors"

	"github.com/kc-agent/kc-agent/internal/filetrust"
)

// Check refuses a file that is not the user's, or that group or others (an
// ACL entry for another account) may read or change.
func Check(path string) error {
	err := filetrust.Check(path, filetrust.User, filetrust.Read|filetrust.Write)
	var te *filetrust.Error
	if errors.As(err, &te) {
		return &ExposedError{Path: path, Detail: te.Detail}
	}
	return err
}
