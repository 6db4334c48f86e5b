#!/bin/sh
# Installs what the test suite and the demo need, when missing:
# Debian packages (Secret Service, D-Bus, Chromium, curl, git, kubectl, swtpm,
# python3 with requests/httpx/pytest/ipykernel/venv, nbconvert, Wine and mingw
# for the Windows tests), Python requests, JupyterLab (PyPI, in a venv), and
# JupyterHub with configurable-http-proxy (scripts/install-jupyterhub.sh).
# Java 17, Maven and Go must already be there. Idempotent and quiet when
# everything is present.
set -e
need=""
command -v gnome-keyring-daemon >/dev/null 2>&1 || need="$need gnome-keyring"
command -v dbus-run-session >/dev/null 2>&1 || need="$need dbus dbus-daemon"
command -v secret-tool >/dev/null 2>&1 || need="$need libsecret-tools"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v curl >/dev/null 2>&1 || need="$need curl"
command -v setpriv >/dev/null 2>&1 || need="$need util-linux"
command -v git >/dev/null 2>&1 || need="$need git"
command -v kubectl >/dev/null 2>&1 || need="$need kubernetes-client"
# The TPM-backed DPoP key's tests (agent/dpop/tpmkey, internal/testenv/swtpm).
command -v swtpm >/dev/null 2>&1 || need="$need swtpm"
# The Windows tests (internal/testenv/wine): Wine runs the Windows binaries,
# mingw builds the ProcessPrng DLL that Go needs and Wine 8 lacks.
command -v wine >/dev/null 2>&1 || need="$need wine"
[ -x /usr/lib/wine/wine64 ] || need="$need wine64"
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need="$need gcc-mingw-w64-x86-64"
# The Python client's tests: Debian's python3 with its requests, httpx,
# pytest, Jupyter kernel and nbconvert, and venv for the PyPI run.
for m in requests httpx pytest ipykernel; do
	/usr/bin/python3 -c "import $m" >/dev/null 2>&1 || need="$need python3-$m"
done
/usr/bin/python3 -c "import ensurepip" >/dev/null 2>&1 || need="$need python3-venv"
[ -x /usr/bin/jupyter-nbconvert ] || need="$need jupyter-nbconvert"
# Optional: used by the unit and plist checks, skipped (with a note) without.
optional=""
command -v systemd-analyze >/dev/null 2>&1 || optional="$optional systemd"
command -v xmllint >/dev/null 2>&1 || optional="$optional libxml2-utils"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
if [ -n "$need$optional" ]; then
	$SUDO apt-get update -qq >/dev/null
fi
if [ -n "$need" ]; then
	echo "install-test-deps: installing Debian packages:$need" >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need dbus-x11 >/dev/null
fi
if [ -n "$optional" ]; then
	echo "install-test-deps: installing optional Debian packages:$optional" >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $optional >/dev/null ||
		echo "install-test-deps: warning: could not install$optional; those checks will be skipped" >&2
fi
if ! python3 -c 'import requests' >/dev/null 2>&1; then
	echo "install-test-deps: installing Python requests" >&2
	python3 -m pip install -q requests
fi
# The JupyterLab test (cmd/kc-agent/jupyterlab_test.go) drives a real
# JupyterLab; Debian has none, so it comes from PyPI into its own venv.
JUPYTERLAB_VENV=/opt/kc-agent-jupyterlab
if [ ! -x "$JUPYTERLAB_VENV/bin/jupyter-lab" ]; then
	echo "install-test-deps: installing JupyterLab from PyPI into $JUPYTERLAB_VENV" >&2
	$SUDO /usr/bin/python3 -m venv "$JUPYTERLAB_VENV"
	$SUDO "$JUPYTERLAB_VENV/bin/pip" install -q --disable-pip-version-check jupyterlab ipykernel
fi
# The JupyterHub end-to-end test: JupyterHub from PyPI and
# configurable-http-proxy from npm, pinned, once per machine.
command -v npm >/dev/null 2>&1 || { echo "install-test-deps: npm is required but missing" >&2; exit 1; }
$SUDO "$(dirname "$0")/install-jupyterhub.sh" >/dev/null
for tool in go java mvn; do
	command -v $tool >/dev/null 2>&1 || { echo "install-test-deps: $tool is required but missing" >&2; exit 1; }
done
