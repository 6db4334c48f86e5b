#!/bin/sh
# Installs the JupyterHub that the end-to-end test runs
# (cmd/kc-agent/jupyterhub_test.go): a virtualenv of Debian's python3 with
# the pinned requirements (internal/testenv/jupyterhub/requirements.txt:
# JupyterHub, jupyter_server, ipykernel and their dependencies) and
# configurable-http-proxy from npm. It goes under a root-owned directory that
# every user can read, because the test's users run their notebook servers
# from it, and outside the work tree so it is downloaded once per machine;
# its name carries a hash of the pins, so a changed pin installs anew.
# Prints the directory. Idempotent; concurrent runs wait for each other.
set -e
# Every user reads what is installed here, whatever umask the caller had.
umask 022
root=$(cd "$(dirname "$0")/.." && pwd)
req="$root/internal/testenv/jupyterhub/requirements.txt"
chp=5.3.0
base=${KC_AGENT_JUPYTERHUB_CACHE:-/var/cache/kc-agent-test}
jh=$(sed -n 's/^jupyterhub==//p' "$req")
key=$( (cat "$req"; echo "configurable-http-proxy@$chp") | sha256sum | cut -c1-12)
dir="$base/jupyterhub-$jh-$key"
install -d -m 0755 "$base"
exec 9>"$base/.jupyterhub.lock"
flock 9
if [ -f "$dir/.complete" ]; then
	echo "$dir"
	exit 0
fi
# A virtualenv is not relocatable (its scripts name their interpreter by
# path), so it is built in place; .complete marks a finished one.
rm -rf "$dir"
install -d -m 0755 "$dir"
echo "install-jupyterhub: installing JupyterHub $jh and configurable-http-proxy $chp into $dir" >&2
/usr/bin/python3 -m venv "$dir/venv"
"$dir/venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
npm install --prefix "$dir/chp" --no-audit --no-fund --loglevel=error "configurable-http-proxy@$chp" >&2
chmod -R go-w,a+rX "$dir"
touch "$dir/.complete"
echo "$dir"
