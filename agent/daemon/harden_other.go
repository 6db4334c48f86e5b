//go:build !linux

package daemon

// harden: on other platforms the umask is set where available; macOS and
// Windows protect a user's processes from each other by other means.
func harden() { umask077() }
