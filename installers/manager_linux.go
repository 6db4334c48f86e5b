package installers

// New returns the manager of this platform: a systemd user unit, chosen
// explicitly (kardianos/service would fall back to SysV in containers and
// WSL, where user services do not exist).
func New(p Params) (Manager, error) { return NewSystemd(p) }
