"""What get_token() returns: the token as a ``str`` (requests, f-strings,
json and print() all see the token) whose repr() names only whose token it
is and until when. Jupyter echoes a cell's last value with repr() into
Out[] and into the saved notebook, so a bare ``get_token()`` there shows
``<access token for carol, expires 14:32>`` instead of a JWT.

Also the few claims a notebook may show (the user's name), read from the
token's payload for display only: the agent verified the login, this does
not verify anything."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Optional

# A payload bigger than this is not read (Keycloak's are a few kB).
MAX_PAYLOAD = 16 << 10


def claims(token: str) -> dict:
    """The JSON payload of a JWT, or {} when token is not one. Never
    raises: the result is only ever shown."""
    try:
        parts = str(token).split(".")
        if len(parts) != 3 or len(parts[1]) > MAX_PAYLOAD:
            return {}
        raw = parts[1] + "=" * (-len(parts[1]) % 4)
        doc = json.loads(base64.urlsafe_b64decode(raw.encode("ascii")))
    except (ValueError, UnicodeError, TypeError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def clock(dt: Optional[datetime]) -> str:
    """A wall-clock time in the kernel's time zone, e.g. ``14:32`` or
    ``14:32 UTC``: what a reader of a saved notebook compares with a clock."""
    if dt is None:
        return "?"
    local = dt.astimezone()
    zone = local.strftime("%Z")
    # Names like "UTC" or "CET" help a reader elsewhere; "+0100" does not.
    if zone.isalpha() and len(zone) <= 5:
        return local.strftime("%H:%M ") + zone
    return local.strftime("%H:%M")


class AccessToken(str):
    """An access token. It is a ``str`` (the token itself) everywhere a
    string is used; only repr() hides it. ``expires_at`` is when it
    expires, ``user`` whose it is (from the token, for display).

    One place wants an exact ``str``: requests refuses a str subclass as a
    whole header value. ``f"Bearer {token}"`` and ``str(token)`` are exact."""

    expires_at: Optional[datetime]
    user: str

    def __new__(cls, token: str, expires_at: Optional[datetime] = None, user: str = "") -> "AccessToken":
        self = super().__new__(cls, token)
        self.expires_at = expires_at
        self.user = user or str(claims(token).get("preferred_username") or "")
        return self

    def __repr__(self) -> str:
        who = f" for {self.user}" if self.user else ""
        return f"<access token{who}, expires {clock(self.expires_at)}>"

    # IPython's pretty printer would otherwise print a str subclass like a str.
    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))

    def __str__(self) -> str:
        # A plain str, so that str(token) can be handed on without the class.
        return str.__str__(self)

    def __reduce__(self):
        return (AccessToken, (str(self), self.expires_at, self.user))
