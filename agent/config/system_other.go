//go:build !unix

package config

import "os"

// CheckSystemFile: on Windows %ProgramData%'s ACLs let only Administrators
// write the kc-agent folder an installer creates; there is no uid or mode
// to check here.
func CheckSystemFile(path string) error {
	_, err := os.Stat(path)
	return err
}
