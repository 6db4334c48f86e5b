package installers

// UserManagerRuns: launchd runs every user's LaunchAgents.
func UserManagerRuns() bool { return true }
