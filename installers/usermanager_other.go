//go:build !linux && !darwin

package installers

// UserManagerRuns: a Windows Run key (and other systems) start the agent at
// logon but don't restart or stop it, so nothing manages an autostarted one.
func UserManagerRuns() bool { return false }
