#!/bin/sh
# Runs a command inside a private D-Bus session bus with an unlocked
# gnome-keyring Secret Service, the way the integration tests need it.
# Usage: scripts/with-secret-service.sh CMD [ARGS...]
set -e
if [ "${KC_AGENT_IN_SECRET_SESSION:-}" = 1 ]; then
	exec "$@"
fi
export KC_AGENT_IN_SECRET_SESSION=1
# A throwaway keyring: tests never touch the user's real one.
KC_AGENT_KEYRING_HOME=$(mktemp -d)
export XDG_DATA_HOME="$KC_AGENT_KEYRING_HOME/data"
mkdir -p "$XDG_DATA_HOME"
trap 'rm -rf "$KC_AGENT_KEYRING_HOME"' EXIT
dbus-run-session -- sh -c '
	# Creates (or unlocks) the throwaway "login" keyring.
	printf "kc-agent-test" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
	exec "$@"' sh "$@"
