//go:build unix && !darwin

package store

import "os"

// sessionBus tells whether the Secret Service can be asked without
// starting anything: go-keyring talks to it over the D-Bus session bus,
// and godbus, when DBUS_SESSION_BUS_ADDRESS is unset, autolaunches a bus
// (dbus-launch), which then lives forever with a gnome-keyring-daemon it
// activates, one per user and run, on a shared host. A desktop session,
// systemd's user services and scripts/with-secret-service.sh all set the
// variable; without it there is no keychain here.
func sessionBus() error {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return nil
	}
	return ErrNoSessionBus
}
