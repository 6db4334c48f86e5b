//go:build !unix

package config

import "os"

// CheckPrivate: on Windows the per-user profile directory's ACLs guard the
// config; there is no uid or mode to check.
func CheckPrivate(path string) error {
	_, err := os.Stat(path)
	return err
}

// CheckTrusted: see CheckPrivate.
func CheckTrusted(path string) error {
	_, err := os.Stat(path)
	return err
}
