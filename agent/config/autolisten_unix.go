//go:build !windows

package config

import "os"

// userNumber is what proxy.listen: auto derives the address from: the uid.
func userNumber() (uint32, error) { return uint32(os.Getuid()), nil }
