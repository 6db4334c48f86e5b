"""Signing in from where the user is: the agent runs the sign-in (device
flow, or browser flow with its own loopback redirect) for a profile its
config names; login() asks first whether the profile is signed in already
(then nothing starts), joins a sign-in that already runs (a restarted
kernel picks its sign-in up again), and hands what to show to a display
(_display.py). The offline token never leaves the agent; nothing here
holds one."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional
from urllib.parse import quote

from . import _client, _idp, _launch
from ._display import DONE, NEXT_LOGIN, PENDING, SIGNED_IN, STILL_OPEN, JupyterDisplay, SignInUpdate, TextDisplay, site_of
from ._errors import START_HINT, AgentUnavailable, KcAgentError, LoginRequired, UntrustedAgent, in_notebook
from ._token import claims, clock

# How often a pending block is redrawn: the agent answers at once when the
# sign-in ends, so this only paces the countdown.
POLL_SECONDS = 2.0
# How long past its end a sign-in may stay pending before login() stops
# waiting for the agent to say it expired.
GRACE_SECONDS = 15.0

JOINED_NOTE = "This picked up the sign-in that was already open."
NEXT_NEW = "Run login() to start a new one."


class LoginExpired(KcAgentError):
    """The sign-in ran out of time before anyone approved it. Run
    ``login()`` to start a new one."""


class LoginDenied(KcAgentError):
    """The request was refused on the sign-in page (or by Keycloak's
    policy). Run ``login()`` to try again."""


class LoginTimeout(KcAgentError):
    """login() stopped waiting because its ``timeout`` passed; the sign-in
    is still open until ``expires_at``. Run ``login()`` again to continue,
    or ``login(cancel=True)`` to end it."""

    def __init__(self, message: str, hint: str = NEXT_LOGIN, code: str = "timeout", expires_at: Optional[datetime] = None) -> None:
        super().__init__(message, hint=hint, code=code)
        self.expires_at = expires_at

    def __reduce__(self):
        return (type(self), (self.message, self.hint, self.code, self.expires_at))


class LoginInterrupted(KeyboardInterrupt):
    """Kernel -> Interrupt (Ctrl-C) while login() waited. The sign-in is
    still open: ``login()`` again continues it. A KeyboardInterrupt, so
    that whatever stops on Ctrl-C still stops; Jupyter shows it as one
    line, not a traceback through this package."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def _render_traceback_(self) -> list:
        return [f"{type(self).__name__}: {self.message}"]


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
    """Who signed in. ``sub``, ``email`` and ``name`` are there for code
    that needs them; repr() and str() show only the user name, so that an
    echoed ``login()`` puts no user id or e-mail into a shared notebook."""

    preferred_username: str
    sub: str = field(default="", repr=False)
    email: str = field(default="", repr=False)
    name: str = field(default="", repr=False)
    profile: str = ""

    def __str__(self) -> str:
        return self.preferred_username

    def __repr__(self) -> str:
        return f"<signed in as {self.preferred_username}, profile {self.profile}>"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))


Display = Callable[[SignInUpdate], None]


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


def _signed_in(name: str) -> Optional[Identity]:
    """Who is signed in to the profile, when the agent can serve a token
    now (or refresh one); None when a sign-in is needed."""
    try:
        info = _client.fetch_token(name, None, 60, False)
    except UntrustedAgent:
        raise
    except KcAgentError:
        # Not signed in, or no agent yet: starting the sign-in says
        # which (and starts the agent).
        return None
    c = {k: _idp.printable(str(v)) for k, v in claims(info.access_token).items() if k in ("preferred_username", "sub", "email", "name")}
    user = c.get("preferred_username") or _idp.printable(_status_user(name))
    return Identity(user, sub=c.get("sub", ""), email=c.get("email", ""), name=c.get("name", ""), profile=name)


def _status_user(name: str) -> str:
    # A token that is not a JWT: the agent's status knows the user name.
    try:
        _, st = _client._request("GET", "/v1/status")
    except (KcAgentError, _client._NoAgent):
        return ""
    for p in st.get("profiles") or []:
        if isinstance(p, dict) and p.get("name") == name:
            return str(p.get("user") or "")
    return ""


def _link(doc: dict) -> str:
    if doc.get("flow") == "browser":
        return str(doc.get("authorization_url") or "")
    return str(doc.get("verification_uri_complete") or doc.get("verification_uri") or "")


def _expires(doc: dict) -> Optional[datetime]:
    try:
        return _client._parse_time(str(doc.get("expires_at", "")))
    except ValueError:
        return None


def _until_end(doc: dict) -> float:
    # Negative once past the end: the grace then runs out too.
    exp = _expires(doc)
    return 0.0 if exp is None else (exp - datetime.now(timezone.utc)).total_seconds()


def _update(doc: dict, name: str, state: str, **kw) -> SignInUpdate:
    """The picture of the agent's sign-in doc in state. Only a pending one
    carries the code, the link and the QR code."""
    t = _idp.printable
    link = t(_link(doc))
    u = dict(
        state=state,
        profile=t(str(doc.get("profile") or name)),
        flow=str(doc.get("flow") or "device"),
        site=t(site_of(str(doc.get("verification_uri") or "") or link)),
        app=t(str(doc.get("client_name") or doc.get("client_id") or "")),
        expires_at=_expires(doc),
    )
    if state == PENDING:
        u.update(link=link, verification_uri=t(str(doc.get("verification_uri") or "")), user_code=t(str(doc.get("user_code") or "")), qr_svg=str(doc.get("qr_svg") or ""))
    u.update(kw)
    return SignInUpdate(**u)


def _shown(err: KcAgentError) -> KcAgentError:
    # The block above says what to do next: the error line need not again.
    err.shown_above = True
    return err


def _default_display() -> Display:
    return JupyterDisplay() if in_notebook() else TextDisplay()


def login(
    profile: Optional[str] = None,
    *,
    flow: str = "auto",
    timeout: Optional[float] = None,
    force: bool = False,
    cancel: bool = False,
    display: Optional[Display] = None,
    switch_user: bool = False,
) -> Optional[Identity]:
    """Makes sure the profile is signed in and returns who is.

    When the agent can serve the profile a token, this returns at once
    with one quiet line ("Signed in as carol"): a notebook that starts
    with ``login()`` runs top to bottom every time. Otherwise the agent
    runs a sign-in for a profile its config names (the user's file, or
    the system-wide one an administrator rolled out): ``flow`` is
    ``"device"`` (a link, a code and a QR code to approve on any device),
    ``"browser"`` (a link for a browser on this machine) or ``"auto"``
    (browser when the kernel shares a desktop session with the agent, see
    shares_desktop; device otherwise). If a sign-in for the profile is
    already open, this call picks it up (also from a restarted kernel).

    Waits as long as the sign-in lives (Keycloak: 10 minutes);
    ``timeout`` seconds stop sooner with LoginTimeout, the sign-in staying
    open. Interrupting raises LoginInterrupted, likewise. ``force=True``
    signs in again although signed in; ``switch_user=True`` too, and lets
    the sign-in replace a login of another user (refused otherwise). ``cancel=True`` ends the profile's
    open sign-in and returns None.

    ``display`` is called with a SignInUpdate at each change and countdown
    tick; by default an HTML block in Jupyter, else text on stderr.

    Raises LoginExpired, LoginDenied, LoginTimeout, LoginInterrupted,
    ConfigError (no such profile), AgentUnavailable or KcAgentError.
    """
    name = _client.profile_name(profile)
    show = display if display is not None else _default_display()
    if cancel:
        _cancel(name, show)
        return None
    if flow == "auto":
        flow = "browser" if shares_desktop() else "device"
    if flow not in ("device", "browser"):
        raise ValueError(f'flow must be "auto", "device" or "browser", not {flow!r}')
    try:
        who = None if force or switch_user else _signed_in(name)
        if who is not None:
            show(SignInUpdate(SIGNED_IN, profile=name, user=who.preferred_username))
            return who
        doc = _start(name, flow, switch_user)
    except LoginRequired as e:
        if e.code == "unknown_profile":
            raise ConfigError(e.message, hint=e.hint, code=e.code, profile=name) from None
        raise
    except KeyboardInterrupt:
        raise LoginInterrupted("stopped before the sign-in showed; run login() again") from None
    doc = _idp.clean_status(doc)
    if doc.get("flow") == "browser" and not in_notebook():
        _launch.open_sign_in(str(doc.get("id") or ""))
    return _wait(doc, name, timeout, show)


def _wait(doc: dict, name: str, timeout: Optional[float], show: Display) -> Identity:
    note = JOINED_NOTE if doc.get("joined") else ""
    sid = str(doc.get("id") or "")
    limit = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
    try:
        while doc.get("state") == "pending":
            # The note stays on every redraw, not only the first.
            show(_update(doc, name, PENDING, note=note))
            life = _until_end(doc) + GRACE_SECONDS
            left = life if limit is None else min(life, limit - time.monotonic())
            if left <= 0:
                return _stop_waiting(doc, name, timeout, show, note, by_timeout=limit is not None and left < life)
            doc = _idp.clean_status(_poll(sid, min(POLL_SECONDS, left)))
    except KeyboardInterrupt:
        u = _update(doc, name, STILL_OPEN, message="You stopped waiting.")
        show(u)
        raise LoginInterrupted(f"stopped waiting; the sign-in is still open until {u.until}") from None
    return _ended(doc, name, show)


def _stop_waiting(doc: dict, name: str, timeout: Optional[float], show: Display, note: str, by_timeout: bool) -> Identity:
    if not by_timeout:
        # Past its end and the agent never said so: it is over all the same.
        return _ended(dict(doc, state="expired"), name, show)
    u = _update(doc, name, STILL_OPEN, message=f"Stopped waiting after {float(timeout or 0):g} s.", note=note)
    show(u)
    raise _shown(LoginTimeout(f"stopped waiting after {float(timeout or 0):g} s; the sign-in is still open until {u.until}", expires_at=u.expires_at))


def _ended(doc: dict, name: str, show: Display) -> Identity:
    state = str(doc.get("state"))
    if state == "done":
        ident = doc.get("identity") or {}
        who = Identity(
            preferred_username=str(ident.get("preferred_username") or ""),
            sub=str(ident.get("sub") or ""),
            email=str(ident.get("email") or ""),
            name=str(ident.get("name") or ""),
            profile=name,
        )
        show(_update(doc, name, DONE, user=who.preferred_username))
        return who
    until = clock(_expires(doc))
    if state == "expired":
        show(_update(doc, name, state, message=f"The sign-in ran out of time at {until} before it was approved.", next_step=NEXT_NEW))
        raise _shown(LoginExpired("the sign-in ran out of time", hint="run kc_agent_client.login() to start a new one", code="expired"))
    if state == "denied":
        show(_update(doc, name, state, message="The sign-in was refused on the sign-in page.", next_step="Run login() to try again."))
        raise _shown(LoginDenied("the sign-in was refused", hint="run kc_agent_client.login() to try again", code="denied"))
    if state == "cancelled":
        show(_update(doc, name, state, message="The sign-in was cancelled.", next_step=NEXT_NEW))
        raise _shown(KcAgentError("the sign-in was cancelled", hint="run kc_agent_client.login() to start a new one", code="cancelled"))
    msg = str(doc.get("error") or f"the sign-in ended: {state}")
    hint = str(doc.get("hint") or "run kc_agent_client.login() to try again")
    show(_update(doc, name, "failed", message=f"The sign-in failed: {msg}.", next_step=hint[:1].upper() + hint[1:] + "."))
    raise _shown(KcAgentError(msg, hint=hint, code=state))


def _cancel(name: str, show: Display) -> None:
    """Ends the profile's open sign-ins at the agent."""
    try:
        _, st = _client._request("GET", "/v1/status")
    except _client._NoAgent:
        st = {}
    open_ = [s for s in st.get("sign_ins") or [] if isinstance(s, dict) and s.get("profile") == name and s.get("state") == "pending"]
    if not open_:
        show(SignInUpdate("cancelled", profile=name, message="No sign-in was open, so there was nothing to cancel."))
        return
    for s in open_:
        _, doc = _client._request("DELETE", f"/v1/login/{quote(str(s.get('id') or ''), safe='')}")
        doc = _idp.clean_status(doc)
        show(_update(doc, name, "cancelled", message="The sign-in was cancelled.", next_step=NEXT_NEW))

