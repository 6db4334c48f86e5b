#!/bin/sh
# Installs kc-agent for the current user (no root): builds it with Go (or
# copies the programs given with KC_AGENT_BINARY) into ~/.local/bin, then
# offers to install the per-user service.
#   sh installers/install.sh            # from a checkout
#   KC_AGENT_BINARY=./kc-agent sh install.sh
set -e
dest="${KC_AGENT_BIN_DIR:-$HOME/.local/bin}"
mkdir -p "$dest"
if [ -n "${KC_AGENT_BINARY:-}" ]; then
	install -m 0755 "$KC_AGENT_BINARY" "$dest/kc-agent"
elif [ -f "$(dirname "$0")/../go.mod" ]; then
	(cd "$(dirname "$0")/.." && CGO_ENABLED=0 go build -trimpath -o "$dest/" ./cmd/kc-agent)
else
	GOBIN="$dest" go install github.com/kc-agent/kc-agent/cmd/kc-agent@latest
fi
echo "installed $dest/kc-agent"
case ":$PATH:" in
*":$dest:"*) ;;
*) echo "note: $dest is not on your PATH; add it to your shell profile" ;;
esac
if [ "${KC_AGENT_NO_SERVICE:-}" = 1 ]; then
	exit 0
fi
answer=n
if [ -t 0 ]; then
	printf "install the per-user service so the agent starts at login? [y/N] "
	read -r answer
fi
case "$answer" in
y|Y|yes) "$dest/kc-agent" service install --binary "$dest/kc-agent" ;;
*) echo "skipped; later: kc-agent service install (or let 'kc-agent token' start the agent)" ;;
esac
