"""Keycloak access tokens from kc-agent, for Python and notebooks.

    from kc_agent_client import get_token, KcAgentAuth, route_url

    requests.get("https://api.example.com/v1/tables", auth=KcAgentAuth())
    requests.get(route_url("warehouse") + "/tables")
    login()   # at the top of a notebook: returns at once when signed in

No setup: the client finds the user's agent the way the kc-agent CLI does
(no environment variables needed), checks that it belongs to this user, and
falls back to the ``kc-agent`` command where it can not talk to the socket.
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional

from . import _cli, _client, _routes, _signin, _transport
from ._client import TokenInfo
from ._errors import AgentUnavailable, KcAgentError, KcAgentWarning, LoginRequired, UntrustedAgent
from ._display import JupyterDisplay, SignInUpdate, TextDisplay
from ._login import ConfigError, Identity, LoginDenied, LoginExpired, LoginInterrupted, LoginTimeout, login
from ._token import AccessToken

def _own_version() -> str:
    # The installed distribution's version (a release wheel carries the
    # release's); a source checkout that was never installed has none.
    from importlib import metadata

    try:
        return metadata.version("kc-agent-client")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _own_version()

__all__ = [
    "get_token",
    "get_token_info",
    "route_url",
    "routes",
    "agent_socket",
    "agent_path",
    "KcAgentAuth",
    "session",
    "httpx_client",
    "TokenInfo",
    "KcAgentError",
    "LoginRequired",
    "AgentUnavailable",
    "UntrustedAgent",
    "KcAgentWarning",
    "login",
    "logout",
    "Identity",
    "LoginExpired",
    "LoginDenied",
    "LoginTimeout",
    "LoginInterrupted",
    "ConfigError",
    "AccessToken",
    "SignInUpdate",
    "JupyterDisplay",
    "TextDisplay",
]


def get_token(
    profile: Optional[str] = None,
    scopes: Optional[Iterable[str]] = None,
    min_valid: Optional[float] = None,
    *,
    force_refresh: bool = False,
) -> str:
    """An access token for ``profile`` (default: ``$KC_AGENT_PROFILE``, else
    ``default``) valid for at least ``min_valid`` seconds. Without
    ``min_valid`` the agent picks the margin from the token's lifetime (60 s,
    but never more than a fifth of the lifetime, and at least 5 s), so
    short-lived tokens are not refreshed before their time.

    ``scopes`` asks for a token narrowed to those scopes. ``force_refresh``
    asks for a token issued now, for when a server refused the last one
    (``KcAgentAuth`` does this by itself on a 401).

    The token is a ``str`` (an AccessToken) that works wherever a string
    does and that print() shows; its repr() hides it, so that a notebook's
    Out[] and the saved .ipynb show ``<access token for carol, expires
    14:32>`` and no token.

    A DPoP-bound token (a profile with ``dpop: on``) is of no use without
    a proof only the agent can sign: get_token() raises KcAgentError (code
    ``dpop_bound``) instead of handing it out as if it were a Bearer
    token. Send such requests with ``KcAgentAuth`` (``session()``,
    ``httpx_client()``) or through a route (``route_url``).

    Raises LoginRequired, AgentUnavailable, UntrustedAgent or KcAgentError.
    """
    info = _client.fetch_token(profile, scopes, min_valid, force_refresh)
    if info.token_type.lower() == "dpop":
        raise KcAgentError(
            f"profile {info.profile!r} serves DPoP-bound access tokens (dpop: on): an API refuses one without a proof that only the agent can sign",
            hint="send the request with auth=KcAgentAuth(), kc_agent_client.session() or httpx_client(), which ask the agent for a proof per request, or through a route (route_url)",
            code="dpop_bound",
        )
    return AccessToken(info.access_token, info.expires_at)


def get_token_info(
    profile: Optional[str] = None,
    scopes: Optional[Iterable[str]] = None,
    min_valid: Optional[float] = None,
    *,
    force_refresh: bool = False,
) -> TokenInfo:
    """Like get_token, with ``token_type``, ``expires_at`` (an aware datetime)
    and ``expires_in``. Its repr hides the token. A DPoP-bound token comes
    back too, with ``token_type`` ``"DPoP"``: check it before sending the
    token, which is of no use without the agent's proof (see get_token)."""
    return _client.fetch_token(profile, scopes, min_valid, force_refresh)


def logout(profile: Optional[str] = None, *, all: bool = False) -> None:
    """Ends the profile's login: the agent deletes the stored token and ends
    the session at Keycloak (with ``all``, every offline session of the user
    for the client, on every machine, where the user has Keycloak's
    manage-account role; without it only this machine's). With no agent running, the
    ``kc-agent logout`` command does the same. A session Keycloak did not end
    (or, with ``all``, ended on this machine only) is a KcAgentWarning saying
    why; the local token is gone either way. Raises AgentUnavailable or
    KcAgentError."""
    _signin.logout(_client.profile_name(profile), all)


def route_url(name: str) -> str:
    """The local base URL (no trailing slash) of the agent's route ``name``,
    e.g. ``http://127.0.0.1:8421/warehouse``. The agent's proxy adds the
    token to requests sent there; on Linux the client checks that the
    address is served by this user."""
    return _routes.route_url(name)


def routes() -> Dict[str, str]:
    """Every configured route: name -> local base URL."""
    return {k: v.rstrip("/") for k, v in _routes.fetch().items()}


def agent_socket() -> Optional[str]:
    """The socket of the verified agent this client talks to, or None when no
    agent answers on a socket (get_token then asks the kc-agent command).
    Raises UntrustedAgent when a candidate belongs to someone else."""
    return _transport.agent_socket()


def agent_path() -> Optional[str]:
    """The kc-agent binary this client would start when no agent answers:
    the one its platform wheel brought, else the first on PATH (absolute
    entries only), else a usual install location; None when there is none.
    An agent that already runs is used whichever installation started it."""
    return _cli.find_cli()


def session(profile: Optional[str] = None, scopes: Optional[Iterable[str]] = None, *, unsafe_cleartext: bool = False, **auth_kw):
    """A ``requests.Session`` that sends ``KcAgentAuth(profile, scopes)``
    and checks every new plain-http connection to loopback before its first
    byte: it goes on only when its other end belongs to this user (on
    Linux and Windows). Plain-http loopback requests with ``KcAgentAuth``
    need such a session; https ones work with any.

    ``unsafe_cleartext=True`` also lets tokens go where the owner can't be
    told, or to a listener of root's (which may hand connections to another
    user); never to another known user."""
    from . import _connguard
    from ._auth import KcAgentAuth

    s = _connguard.requests_session(unsafe_cleartext)
    s.auth = KcAgentAuth(profile, scopes, **auth_kw)
    return s


def httpx_client(profile: Optional[str] = None, scopes: Optional[Iterable[str]] = None, *, asynchronous: bool = False, unsafe_cleartext: bool = False, **client_kw):
    """An ``httpx.Client`` (``asynchronous=True``: an ``httpx.AsyncClient``)
    with ``KcAgentAuth(profile, scopes)`` whose connections are checked as
    ``session()``'s are. Other keywords go to the client.

    Its last request hook sends a redirect's request without the DPoP
    proof and token KcAgentAuth put on the first one (httpx would copy
    them there: it runs no auth for a redirect)."""
    from . import _auth, _connguard

    client_kw.setdefault("auth", _auth.KcAgentAuth(profile, scopes))
    hooks = dict(client_kw.pop("event_hooks", None) or {})
    drop = _auth.drop_redirected_proof_async if asynchronous else _auth.drop_redirected_proof
    hooks["request"] = [*hooks.get("request", ()), drop]
    return _connguard.httpx_client(asynchronous, unsafe_cleartext, event_hooks=hooks, **client_kw)


def __getattr__(name: str):
    # Imported on first use: requests and httpx cost tens of milliseconds to
    # import, and get_token() needs neither.
    if name == "KcAgentAuth":
        from ._auth import KcAgentAuth

        return KcAgentAuth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
