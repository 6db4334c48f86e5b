"""Signing in from where the user is: the agent runs the sign-in (device
flow, or browser flow with its own loopback redirect) for a profile its
config names, and this module shows the link, the code, the QR code and the
time left, in Jupyter as an HTML block that updates while it waits, else as
text on stderr. The offline token never leaves the agent; nothing here ever
holds a token."""

from __future__ import annotations

import html
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, Optional
from urllib.parse import quote

from . import _client
from ._errors import AgentUnavailable, KcAgentError, LoginRequired, START_HINT, in_notebook

# How often the waiting display is refreshed: the agent answers at once
# when the sign-in ends, so this only paces the countdown.
POLL_SECONDS = 2.0


class LoginExpired(KcAgentError):
    """The sign-in was not approved in time (the device code expired, or
    ``timeout`` passed). Call ``login()`` again."""


class LoginDenied(KcAgentError):
    """The user (or Keycloak's policy) refused the sign-in."""


class ConfigError(KcAgentError):
    """The agent's configuration can not serve the request, e.g. it names no
    such profile. ``profile`` is the profile asked for."""

    def __init__(self, message: str, hint: str = "", code: str = "", profile: str = "") -> None:
        super().__init__(message, hint=hint, code=code)
        self.profile = profile

    def __reduce__(self):
        return (type(self), (self.message, self.hint, self.code, self.profile))


@dataclass(frozen=True)
class Identity:
    """Who signed in, from the ID token the agent verified."""

    preferred_username: str
    sub: str
    email: str = ""
    name: str = ""
    profile: str = ""

    def __str__(self) -> str:
        who = self.preferred_username or self.sub
        if self.email and self.email != who:
            who += f" <{self.email}>"
        return who


def shares_desktop(env: Optional[Dict[str, str]] = None, platform: Optional[str] = None) -> bool:
    """Whether a browser the user sees runs beside the agent and this kernel
    (the browser flow's redirect goes to the agent's 127.0.0.1 listener): not
    over SSH, not on JupyterHub, and on Linux only with a graphical session
    (DISPLAY or WAYLAND_DISPLAY)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if env.get("SSH_CONNECTION") or env.get("SSH_TTY") or env.get("JUPYTERHUB_API_URL"):
        return False
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def _start(profile: str, flow: str, switch_user: bool = False) -> dict:
    body = {"profile": profile, "flow": flow}
    if switch_user:
        body["switch_user"] = True
    try:
        _, doc = _client._request("POST", "/v1/login", body)
        return doc
    except _client._NoAgent as e:
        na = e
    # No agent answers: `kc-agent token` starts one (and says the profile
    # needs a login, which is why we are here).
    try:
        _client._run_cli(["token", "--format", "json", "--profile", profile], na)
    except LoginRequired:
        pass
    except AgentUnavailable:
        raise
    except KcAgentError:
        pass
    try:
        _, doc = _client._request("POST", "/v1/login", body)
        return doc
    except _client._NoAgent:
        raise AgentUnavailable("no kc-agent answers on a socket, so it can not run the sign-in", hint=START_HINT) from None


def _poll(sid: str, wait: float) -> dict:
    try:
        _, doc = _client._request("GET", f"/v1/login/{quote(sid, safe='')}?wait={wait:.1f}s")
    except _client._NoAgent:
        raise AgentUnavailable("the agent stopped answering during the sign-in", hint=START_HINT) from None
    return doc


def _left(doc: dict) -> float:
    try:
        exp = _client._parse_time(str(doc.get("expires_at", "")))
    except ValueError:
        return 0.0
    return max(0.0, (exp - datetime.now(timezone.utc)).total_seconds())


def _fmt_left(secs: float) -> str:
    s = int(secs)
    return f"{s // 60}:{s % 60:02d}"


def _link(doc: dict) -> str:
    if doc.get("flow") == "browser":
        return str(doc.get("authorization_url") or "")
    return str(doc.get("verification_uri_complete") or doc.get("verification_uri") or "")


def render_html(doc: dict, state: str = "pending", note: str = "") -> str:
    """The notebook's sign-in block (also used for the end states)."""
    e = html.escape
    profile = e(str(doc.get("profile") or "default"))
    box = 'style="font-family:sans-serif;border:1px solid #bbb;border-radius:6px;padding:0.8em 1em;display:inline-block;line-height:1.5"'
    head = f'<div class="kc-agent-login" {box}><b>kc-agent</b> &middot; sign-in for profile <code>{profile}</code><br>'
    link = _link(doc)
    if state == "done":
        # The page it went through stays in the saved notebook (without the
        # used code): where a reader would sign in too.
        page = str(doc.get("verification_uri") or "") if doc.get("flow") == "device" else link.split("?", 1)[0]
        return head + f'&#10003; {e(note)}<br><small>signed in at <a href="{e(page, quote=True)}" target="_blank" rel="noopener noreferrer">{e(page)}</a></small></div>'

    if state != "pending":
        return head + f"&#10007; {e(note)}<br>sign-in page: <a href=\"{e(link, quote=True)}\" target=\"_blank\" rel=\"noopener noreferrer\">{e(link)}</a></div>"
    parts = [head]
    parts.append(f'<a href="{e(link, quote=True)}" target="_blank" rel="noopener noreferrer" style="font-size:1.2em;font-weight:bold">Sign in</a>')
    if doc.get("flow") == "device":
        parts.append(f' &mdash; on any device, at <a href="{e(str(doc.get("verification_uri") or ""), quote=True)}" target="_blank" rel="noopener noreferrer">{e(str(doc.get("verification_uri") or ""))}</a>, with the code')
        parts.append(f'<div style="font-family:monospace;font-size:1.6em;letter-spacing:0.1em;margin:0.3em 0">{e(str(doc.get("user_code") or ""))}</div>')
        svg = str(doc.get("qr_svg") or "")
        if svg.startswith("<svg") and "<script" not in svg.lower():
            parts.append(f'<div title="scan with a phone" style="width:164px">{svg}</div>')
    else:
        parts.append(" &mdash; in a browser on this machine")
        parts.append("<br>")
    parts.append(f'<span class="kc-agent-left">{_fmt_left(_left(doc))} left</span>')
    if note:
        parts.append(f"<br><small>{e(note)}</small>")
    parts.append("</div>")
    return "".join(parts)


def render_text(doc: dict) -> str:
    profile = doc.get("profile") or "default"
    if doc.get("flow") == "browser":
        return (
            f"kc-agent: to sign in (profile {profile}), open this URL in a browser on this machine:\n\n"
            f"  {doc.get('authorization_url')}\n\n"
            f"kc-agent: waiting for the sign-in ({_fmt_left(_left(doc))} left)\n"
        )
    out = (
        f"kc-agent: to sign in (profile {profile}), open {doc.get('verification_uri')} on any device and enter the code:\n\n"
        f"    {doc.get('user_code')}\n\n"
    )
    if doc.get("verification_uri_complete"):
        out += f"or open {doc.get('verification_uri_complete')}\n\n"
    return out + f"kc-agent: waiting for the approval ({_fmt_left(_left(doc))} left)\n"


class _Display:
    """The notebook's updating HTML block, or text on stderr."""

    def __init__(self) -> None:
        self.notebook = in_notebook()
        self.handle: Any = None

    def show(self, doc: dict, state: str = "pending", note: str = "") -> None:
        if self.notebook:
            data = {"text/html": render_html(doc, state, note), "text/plain": _plain(doc, state, note)}
            from IPython.display import display  # only in a kernel

            if self.handle is None:
                self.handle = display(data, raw=True, display_id=True)
            else:
                self.handle.update(data, raw=True)
            return
        if state == "pending" and self.handle is None:
            self.handle = True
            sys.stderr.write(render_text(doc))
            sys.stderr.flush()
        elif state != "pending":
            sys.stderr.write(f"kc-agent: {note}\n")
            sys.stderr.flush()


def _plain(doc: dict, state: str, note: str) -> str:
    if state == "pending":
        return f"kc-agent sign-in: open {_link(doc)}" + (f" and enter the code {doc.get('user_code')}" if doc.get("user_code") else "") + f" ({_fmt_left(_left(doc))} left)"
    return f"kc-agent: {note}"


def login(profile: Optional[str] = None, *, flow: str = "auto", timeout: float = 300, switch_user: bool = False) -> Identity:
    """Signs the profile in through the agent and returns who signed in.

    The agent runs the sign-in for a profile its config names (the user's
    file, or the system-wide one an administrator rolled out): ``flow`` is
    ``"device"`` (a link, a code and a QR code to approve on any device),
    ``"browser"`` (a link for a browser on this machine) or ``"auto"``
    (browser when the kernel shares a desktop session with the agent, see
    shares_desktop; device otherwise). If a sign-in for the profile already
    runs, this call joins it. In Jupyter it shows an HTML block that counts
    down; elsewhere it prints to stderr. Waits at most ``timeout`` seconds.
    A sign-in as another user than the stored login is refused unless
    ``switch_user`` is true.

    Raises LoginExpired, LoginDenied, ConfigError (no such profile),
    AgentUnavailable or KcAgentError.
    """
    name = _client.profile_name(profile)
    if flow == "auto":
        flow = "browser" if shares_desktop() else "device"
    if flow not in ("device", "browser"):
        raise ValueError(f'flow must be "auto", "device" or "browser", not {flow!r}')
    try:
        doc = _start(name, flow, switch_user)
    except LoginRequired as e:
        if e.code == "unknown_profile":
            raise ConfigError(e.message, hint=e.hint, code=e.code, profile=name) from None
        raise
    if doc.get("flow") == "browser" and not in_notebook():
        _open_browser(str(doc.get("authorization_url") or ""))
    disp = _Display()
    disp.show(doc, note="joined the sign-in already running for this profile" if doc.get("joined") else "")
    deadline = time.monotonic() + max(0.0, float(timeout))
    sid = str(doc.get("id") or "")
    while doc.get("state") == "pending":
        left = deadline - time.monotonic()
        if left <= 0:
            note = f"gave up waiting after {timeout:.0f}s; the sign-in stays open for {_fmt_left(_left(doc))} (`kc-agent status` shows it)"
            disp.show(doc, "expired", note)
            raise LoginExpired(note, hint="call kc_agent_client.login() again", code="expired")
        doc = _poll(sid, min(POLL_SECONDS, left))
        if doc.get("state") == "pending":
            disp.show(doc)
    state = doc.get("state")
    if state == "done":
        ident = doc.get("identity") or {}
        who = Identity(
            preferred_username=str(ident.get("preferred_username") or ""),
            sub=str(ident.get("sub") or ""),
            email=str(ident.get("email") or ""),
            name=str(ident.get("name") or ""),
            profile=name,
        )
        disp.show(doc, "done", f"signed in as {who} (profile {name}); get_token() and the routes work now")
        return who
    msg = str(doc.get("error") or f"the sign-in ended: {state}")
    hint = str(doc.get("hint") or "")
    disp.show(doc, str(state), msg)
    if state == "expired":
        raise LoginExpired(msg, hint="call kc_agent_client.login() again, and approve it sooner", code="expired")
    if state == "denied":
        raise LoginDenied(msg, hint="call kc_agent_client.login() again and accept the request", code="denied")
    raise KcAgentError(msg, hint=hint, code=str(state))


def _open_browser(url: str) -> None:
    if not url:
        return
    try:
        import webbrowser

        webbrowser.open(url, new=2)
    except Exception:  # the URL is printed either way
        pass
