"""Typed errors. Each one carries the agent's message and a hint that says
what to do next, and renders as one line in Jupyter instead of a traceback
through http.client internals."""

from __future__ import annotations

import re
import sys

# Anything shaped like a JWT is cut out of messages before they are shown:
# kc-agent never puts a token in an error, and this keeps it that way even
# if some peer does.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(\.[A-Za-z0-9_-]*)?")


def _scrub(text: str) -> str:
    return _JWT.sub("[token]", text or "")


class KcAgentError(Exception):
    """Base class of every error this package raises.

    ``message`` says what went wrong, ``hint`` what to do about it, and
    ``code`` is the agent's error code (``login_required``, ``unavailable``,
    ...) when the agent gave one.
    """

    def __init__(self, message: str, hint: str = "", code: str = "") -> None:
        self.message = _scrub(message)
        self.hint = _scrub(hint)
        self.code = code
        super().__init__(self.message)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(message={self.message!r}, hint={self.hint!r}, code={self.code!r})"

    def __reduce__(self):
        return (type(self), (self.message, self.hint, self.code))

    # IPython calls this instead of formatting a traceback: a notebook shows
    # one line that says what is wrong and what to do. When login()'s block
    # right above already says what to do (shown_above), the line does not
    # say it twice.
    def _render_traceback_(self) -> list:
        if getattr(self, "shown_above", False):
            return [f"{type(self).__name__}: {self.message}"]
        return [f"{type(self).__name__}: {self}"]


class LoginRequired(KcAgentError):
    """The login is gone (revoked, expired) or the profile does not exist:
    run ``kc_agent_client.login()`` (in a notebook) or ``kc-agent login``.
    The agent answered HTTP 401 or the CLI exit 4."""

    def __init__(self, message: str, hint: str = "", code: str = "") -> None:
        # In a notebook the way out is a cell, not a terminal.
        if code == "login_required" and in_notebook() and "kc_agent_client.login(" not in hint:
            hint = NOTEBOOK_LOGIN_HINT
        super().__init__(message, hint=hint, code=code)


NOTEBOOK_LOGIN_HINT = "run kc_agent_client.login() in a cell to sign in, or `kc-agent login` in a terminal"


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython with a kernel)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        ip = ipython.get_ipython()
    except Exception:
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


class AgentUnavailable(KcAgentError):
    """No agent answers (no socket, nobody listening, the CLI exited 3 or is
    missing). The hint says how to start one."""


class UntrustedAgent(KcAgentError):
    """A socket or its directory belongs to another user, or the process
    serving it runs as another user: someone may be impersonating the agent.
    Nothing was sent to it and no agent was started there."""


START_HINT = (
    "start the agent with `kc-agent run` (or once: `kc-agent service install`), "
    "or put kc-agent on PATH so that this client can start it"
)


class KcAgentWarning(UserWarning):
    """Something the user should know that did not stop the call: e.g. a
    logout whose session the identity provider did not end (the local
    token is gone all the same)."""
