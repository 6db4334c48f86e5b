#!/bin/sh
# Runs after the deb/rpm is installed. The user unit is per user: nothing is
# enabled for anyone here.
echo "kc-agent installed. Each user enables the agent with: systemctl --user enable --now kc-agent"
echo "(or: kc-agent service install). Headless hosts: loginctl enable-linger <user>"
# Earlier releases shipped two programs; this one is kc-agent alone. The
# package manager drops /usr/bin/kc-agent-core on upgrade; a copy left by
# hand would be found by `kc-agent doctor`, which says how to remove it.
rm -f /usr/bin/kc-agent-core
