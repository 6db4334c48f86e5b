"""How a sign-in is shown. login() hands every change (and the countdown)
to a display: a callable taking a SignInUpdate. The Jupyter block and the
text on stderr are two such displays; a dashboard passes its own
(``login(display=...)``).

Every state says what happened and what to run next in plain words, and
only a pending sign-in carries the code, the link or the QR code: a saved
notebook read later must not offer a way to approve a sign-in into this
user's agent, and must not show a code that no longer works."""

from __future__ import annotations

import html
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional
from urllib.parse import urlsplit

from ._token import clock

# States of a SignInUpdate.
PENDING = "pending"  # waiting for the approval: code, link, QR
STILL_OPEN = "still_open"  # we stopped waiting (interrupt, timeout); the agent still waits
DONE = "done"  # signed in just now
SIGNED_IN = "signed_in"  # was signed in already: nothing started
ENDED = ("denied", "expired", "cancelled", "failed")

NEXT_LOGIN = "run login() again to continue, or login(cancel=True)"


@dataclass(frozen=True)
class SignInUpdate:
    """One picture of a sign-in, for a display.

    ``state`` is "pending", "still_open", "done", "signed_in", "denied",
    "expired", "cancelled" or "failed". ``link``, ``user_code``,
    ``verification_uri`` and ``qr_svg`` are set only while pending.
    ``message`` says what happened, ``next_step`` what to run next (both
    plain sentences, empty when there is nothing to say). ``expires_at``
    is when the sign-in ends (aware datetime), ``site`` the sign-in
    server's host name, ``app`` the name Keycloak's page shows for the
    application, ``user`` who is signed in (done, signed_in)."""

    state: str
    profile: str = "default"
    flow: str = "device"
    site: str = ""
    app: str = ""
    link: str = ""
    verification_uri: str = ""
    user_code: str = ""
    qr_svg: str = ""
    expires_at: Optional[datetime] = None
    user: str = ""
    message: str = ""
    next_step: str = ""
    note: str = ""

    @property
    def seconds_left(self) -> float:
        if self.expires_at is None:
            return 0.0
        return max(0.0, (self.expires_at - datetime.now(timezone.utc)).total_seconds())

    @property
    def until(self) -> str:
        """The end time on a clock, e.g. "14:32 UTC"."""
        return clock(self.expires_at)


def site_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _left(u: SignInUpdate) -> str:
    s = int(u.seconds_left)
    return f"{s // 60}:{s % 60:02d} left, until {u.until}"


def headline(u: SignInUpdate) -> str:
    """The block's first line, in words, for every state."""
    where = f" at {u.site}" if u.site else ""
    if u.state == PENDING:
        return f"Sign in{where}"
    if u.state == STILL_OPEN:
        return f"Sign-in still open until {u.until}: {NEXT_LOGIN}"
    if u.state in (DONE, SIGNED_IN):
        return f"Signed in as {u.user}" if u.user else "Signed in"
    return u.message


def render_html(u: SignInUpdate) -> str:
    """The notebook's block for u."""
    e = html.escape
    box = "font-family:sans-serif;border:1px solid #bbb;border-radius:6px;padding:0.6em 1em;display:inline-block;line-height:1.5"
    prof = f" <small>profile {e(u.profile)}</small>" if u.profile != "default" else ""
    if u.state == SIGNED_IN:
        return f'<div class="kc-agent-login kc-agent-signed-in" style="font-family:sans-serif">&#10003; {e(headline(u))}.{prof}</div>'
    out = [f'<div class="kc-agent-login kc-agent-{e(u.state)}" style="{box}">']
    if u.state == PENDING:
        out.append(f"<b>{e(headline(u))}</b>{prof}<br>")
        out.append(_pending_html(u))
    elif u.state == DONE:
        out.append(f"&#10003; <b>{e(headline(u))}</b>.{prof}")
    elif u.state == STILL_OPEN:
        out.append(f"<b>Sign-in still open until {e(u.until)}</b>: run <code>login()</code> again to continue, or <code>login(cancel=True)</code>.{prof}")
        if u.message:
            out.append(f"<br><small>{e(u.message)}</small>")
    else:
        out.append(f"&#10007; <b>{e(u.message)}</b>{prof}")
        if u.next_step:
            out.append(f"<br>{e(u.next_step)}")
    if u.note:
        out.append(f"<br><small>{e(u.note)}</small>")
    out.append("</div>")
    return "".join(out)


def _pending_html(u: SignInUpdate) -> str:
    e = html.escape
    a = 'target="_blank" rel="noopener noreferrer"'
    out = [f'<a href="{e(u.link, quote=True)}" {a} style="font-size:1.2em;font-weight:bold">Open the sign-in page</a>']
    if u.flow == "device":
        vu = e(u.verification_uri, quote=True)
        out.append(f' or, on a phone or another computer, go to <a href="{vu}" {a}>{e(u.verification_uri)}</a> and enter the code')
        out.append(f'<div style="font-family:monospace;font-size:1.6em;letter-spacing:0.1em;margin:0.3em 0">{e(u.user_code)}</div>')
        if u.qr_svg.startswith("<svg") and "<script" not in u.qr_svg.lower():
            out.append(f'<div title="scan with a phone" style="width:164px">{u.qr_svg}</div>')
    else:
        out.append(" in a browser on this computer.<br>")
    if u.app:
        out.append(f"When asked, allow access for <b>{e(u.app)}</b>.<br>")
    out.append(f'Waiting for you: <span class="kc-agent-left">{e(_left(u))}</span>')
    return "".join(out)


def render_text(u: SignInUpdate) -> str:
    """The same, as text (also the notebook's text/plain)."""
    if u.state == PENDING:
        if u.flow == "device":
            out = f"{headline(u)}: open {u.verification_uri} on any device and enter the code {u.user_code}"
            if u.link:
                out += f", or open {u.link}"
        else:
            out = f"{headline(u)}: open {u.link} in a browser on this computer"
        if u.app:
            out += f". When asked, allow access for {u.app}"
        out += f". Waiting for you: {_left(u)}."
    elif u.state in (DONE, SIGNED_IN):
        out = headline(u) + "."
    elif u.state == STILL_OPEN:
        out = headline(u) + "." + (f" {u.message}" if u.message else "")
    else:
        out = u.message + (f" {u.next_step}" if u.next_step else "")
    if u.profile != "default":
        out += f" Profile: {u.profile}."
    if u.note:
        out += f" {u.note}"
    return out


class JupyterDisplay:
    """The notebook's block: one output that each update redraws."""

    def __init__(self) -> None:
        self.handle: Any = None

    def __call__(self, u: SignInUpdate) -> None:
        from IPython.display import display  # only in a kernel

        data = {"text/html": render_html(u), "text/plain": render_text(u)}
        if self.handle is None:
            self.handle = display(data, raw=True, display_id=True)
        else:
            self.handle.update(data, raw=True)


class TextDisplay:
    """Text on stderr: the whole picture once, then one line per change of
    state (not one per countdown tick)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self.last = ""

    def __call__(self, u: SignInUpdate) -> None:
        if u.state == self.last:
            return
        self.last = u.state
        out = self.stream or sys.stderr
        out.write(_text_block(u) if u.state == PENDING else f"kc-agent: {render_text(u)}\n")
        out.flush()


def _text_block(u: SignInUpdate) -> str:
    # The code on a line of its own, as `kc-agent login` prints it.
    prof = f" (profile {u.profile})" if u.profile != "default" else ""
    if u.flow == "device":
        out = f"kc-agent: {headline(u)}{prof}: open {u.verification_uri} on any device and enter the code\n\n    {u.user_code}\n\n"
        if u.link:
            out += f"or open {u.link}\n"
    else:
        out = f"kc-agent: {headline(u)}{prof}: open this link in a browser on this computer:\n\n  {u.link}\n\n"
    if u.app:
        out += f"When asked, allow access for {u.app}.\n"
    return out + f"kc-agent: waiting for you: {_left(u)}\n"
