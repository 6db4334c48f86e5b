"""Signing in from where the user is: the agent runs the sign-in (device
flow, or browser flow with its own loopback redirect) for a profile its
config names; login() asks first whether the profile is signed in already
(then nothing starts), joins a sign-in that already runs (a restarted
kernel picks its sign-in up again), and hands what to show to a display
(_display.py). The calls to the agent and its typed answer are _signin's;
this module decides what to wait for and what to show. The offline token
never leaves the agent; nothing here holds one."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Dict, Optional

from . import _client, _idp, _launch, _signin
from ._display import DONE, NEXT_LOGIN, PENDING, SIGNED_IN, STILL_OPEN, JupyterDisplay, SignInUpdate, TextDisplay, site_of
from ._errors import KcAgentError, LoginRequired, UntrustedAgent, in_notebook
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
    user = c.get("preferred_username") or _idp.printable(_signin.status_user(name))
    return Identity(user, sub=c.get("sub", ""), email=c.get("email", ""), name=c.get("name", ""), profile=name)


def _until_end(st: _signin.LoginStatus) -> float:
    # Negative once past the end: the grace then runs out too.
    return 0.0 if st.expires_at is None else (st.expires_at - datetime.now(timezone.utc)).total_seconds()


def _update(st: _signin.LoginStatus, name: str, state: str, **kw) -> SignInUpdate:
    """The picture of the agent's sign-in in state. Only a pending one
    carries the code, the link and the QR code."""
    t = _idp.printable  # the identity provider's text is printable already; the profile and client are the config's
    u = dict(
        state=state,
        profile=t(st.profile or name),
        flow=st.flow or "device",
        site=site_of(st.verification_uri or st.link),
        app=t(st.client_name or st.client_id),
        expires_at=st.expires_at,
    )
    if state == PENDING:
        u.update(link=st.link, verification_uri=st.verification_uri, user_code=st.user_code, qr_svg=st.qr_svg)
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
        st = _signin.start(name, flow, switch_user)
    except LoginRequired as e:
        if e.code == "unknown_profile":
            raise ConfigError(e.message, hint=e.hint, code=e.code, profile=name) from None
        raise
    except KeyboardInterrupt:
        raise LoginInterrupted("stopped before the sign-in showed; run login() again") from None
    if st.flow == "browser" and not in_notebook():
        _launch.open_sign_in(st.id)
    return _wait(st, name, timeout, show)


def _wait(st: _signin.LoginStatus, name: str, timeout: Optional[float], show: Display) -> Identity:
    note = JOINED_NOTE if st.joined else ""
    sid = st.id
    limit = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
    try:
        while st.pending:
            # The note stays on every redraw, not only the first.
            show(_update(st, name, PENDING, note=note))
            life = _until_end(st) + GRACE_SECONDS
            left = life if limit is None else min(life, limit - time.monotonic())
            if left <= 0:
                return _stop_waiting(st, name, timeout, show, note, by_timeout=limit is not None and left < life)
            st = _signin.poll(sid, min(POLL_SECONDS, left))
    except KeyboardInterrupt:
        u = _update(st, name, STILL_OPEN, message="You stopped waiting.")
        show(u)
        raise LoginInterrupted(f"stopped waiting; the sign-in is still open until {u.until}") from None
    return _ended(st, name, show)


def _stop_waiting(st: _signin.LoginStatus, name: str, timeout: Optional[float], show: Display, note: str, by_timeout: bool) -> Identity:
    if not by_timeout:
        # Past its end and the agent never said so: it is over all the same.
        return _ended(dataclasses.replace(st, state="expired"), name, show)
    u = _update(st, name, STILL_OPEN, message=f"Stopped waiting after {float(timeout or 0):g} s.", note=note)
    show(u)
    raise _shown(LoginTimeout(f"stopped waiting after {float(timeout or 0):g} s; the sign-in is still open until {u.until}", expires_at=u.expires_at))


def _ended(st: _signin.LoginStatus, name: str, show: Display) -> Identity:
    state = st.state
    if state == "done":
        ident = st.identity or _signin.LoginIdentity()
        who = Identity(preferred_username=ident.preferred_username, sub=ident.sub, email=ident.email, name=ident.name, profile=name)
        show(_update(st, name, DONE, user=who.preferred_username))
        return who
    until = clock(st.expires_at)
    if state == "expired":
        show(_update(st, name, state, message=f"The sign-in ran out of time at {until} before it was approved.", next_step=NEXT_NEW))
        raise _shown(LoginExpired("the sign-in ran out of time", hint="run kc_agent_client.login() to start a new one", code="expired"))
    if state == "denied":
        show(_update(st, name, state, message="The sign-in was refused on the sign-in page.", next_step="Run login() to try again."))
        raise _shown(LoginDenied("the sign-in was refused", hint="run kc_agent_client.login() to try again", code="denied"))
    if state == "cancelled":
        show(_update(st, name, state, message="The sign-in was cancelled.", next_step=NEXT_NEW))
        raise _shown(KcAgentError("the sign-in was cancelled", hint="run kc_agent_client.login() to start a new one", code="cancelled"))
    msg = st.error or f"the sign-in ended: {state or 'without a state'}"
    hint = st.hint or "run kc_agent_client.login() to try again"
    show(_update(st, name, "failed", message=f"The sign-in failed: {msg}.", next_step=hint[:1].upper() + hint[1:] + "."))
    raise _shown(KcAgentError(msg, hint=hint, code=state))


def _cancel(name: str, show: Display) -> None:
    """Ends the profile's open sign-ins at the agent."""
    open_ = _signin.open_sign_ins(name)
    if not open_:
        show(SignInUpdate("cancelled", profile=name, message="No sign-in was open, so there was nothing to cancel."))
        return
    for s in open_:
        st = _signin.cancel(s.id)
        show(_update(st, name, "cancelled", message="The sign-in was cancelled.", next_step=NEXT_NEW))
