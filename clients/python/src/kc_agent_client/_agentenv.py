"""The environment the kc-agent CLI (and the agent it may autostart) gets
from this process: what it needs to find the user's files, reach Keycloak
and the keychain, and nothing else. A notebook kernel carries secrets of its
own (JUPYTERHUB_API_TOKEN, AWS_*) that an agent must not keep for as long as
it runs. The same list as kc-agent's internal/agentenv; both run the vectors
in internal/agentenv/testdata/vectors.json."""

import os
import sys
from typing import Dict, Mapping, Optional

_KEPT = frozenset(
    {
        "HOME", "PATH", "USER", "LOGNAME", "SHELL", "TMPDIR", "LANG", "LANGUAGE", "TZ",
        "DBUS_SESSION_BUS_ADDRESS",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
    }
)

_KEPT_WINDOWS = frozenset(
    {
        "SYSTEMROOT", "WINDIR", "SYSTEMDRIVE", "COMSPEC", "PATHEXT",
        "USERPROFILE", "LOCALAPPDATA", "APPDATA", "PROGRAMDATA",
        "TEMP", "TMP", "USERNAME", "USERDOMAIN", "COMPUTERNAME",
        "PROGRAMFILES", "PROGRAMFILES(X86)", "NUMBER_OF_PROCESSORS",
        "PROCESSOR_ARCHITECTURE", "HOMEDRIVE", "HOMEPATH",
    }
)

_PREFIXES = ("LC_", "XDG_", "KC_AGENT_")


def _goos() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "darwin"
    return "linux"


def keep(name: str, goos: Optional[str] = None) -> bool:
    """Whether the variable name is passed on (names are case-insensitive
    on Windows)."""
    goos = goos or _goos()
    if goos == "windows":
        name = name.upper()
        if name in _KEPT_WINDOWS:
            return True
    return name in _KEPT or name.startswith(_PREFIXES)


def agent_environment(environ: Optional[Mapping[str, str]] = None, goos: Optional[str] = None) -> Dict[str, str]:
    """environ (default os.environ) without what keep drops."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k and keep(k, goos)}
