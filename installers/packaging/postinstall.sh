#!/bin/sh
# Runs after the deb/rpm is installed. The user unit is per user: nothing is
# enabled for anyone here.
echo "kc-agent installed. Each user enables the agent with: systemctl --user enable --now kc-agent"
echo "(or: kc-agent service install). Headless hosts: loginctl enable-linger <user>"
