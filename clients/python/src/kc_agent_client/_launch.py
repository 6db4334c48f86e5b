"""Opening a sign-in in a browser without putting its URL on a process's
argv. Python's webbrowser runs $BROWSER, xdg-open or the like with the URL
as an argument, and every local user can read that (/proc/*/cmdline, ps);
the URL holds the state and PKCE challenge of a browser sign-in. So this
asks the agent for a one-time launcher link (POST /v1/login/{id}/launch),
which redirects only this user's browser, once, and opens that."""

from __future__ import annotations

from urllib.parse import quote

from . import _transport
from ._errors import KcAgentError


def launch_link(sign_in_id: str) -> str:
    """The agent's one-time launcher link for a pending sign-in, or "" when
    the agent can not make one (it is older, or the sign-in ended)."""
    if not sign_in_id:
        return ""
    try:
        _, doc = _transport.request("POST", f"/v1/login/{quote(sign_in_id, safe='')}/launch")
    except (KcAgentError, _transport.NoAgent):
        return ""
    link = str(doc.get("url") or "")
    # The launcher listens on loopback; anything else is not ours to open.
    return link if link.startswith("http://127.0.0.1:") else ""


def open_sign_in(sign_in_id: str) -> bool:
    """Opens the sign-in's page in a browser through a launcher link;
    False when nothing was opened (the page's URL is shown either way)."""
    link = launch_link(sign_in_id)
    if not link:
        return False
    try:
        import webbrowser

        return bool(webbrowser.open(link, new=2))
    except Exception:
        return False
