package installers

import (
	"fmt"
	"os"
)

// UserManagerRuns tells whether a per-user service manager runs for this
// user (systemd --user answers on its private socket), without starting
// one or asking systemctl: `kc-agent run --autostarted` decides by it
// whether it ends when idle by default. A notebook server spawned by
// JupyterHub, a container or a cron-only account has none.
func UserManagerRuns() bool {
	fi, err := os.Stat(fmt.Sprintf("/run/user/%d/systemd/private", os.Getuid()))
	return err == nil && fi.Mode()&os.ModeSocket != 0
}
