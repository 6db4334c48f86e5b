"""Every token sent in the clear goes down a connection that was checked.

Loopback is shared by every user of the machine: a port the user's server
left free is anyone's, and an IPv6 socket, a second address of "localhost"
or a kept-alive connection can each put another user's process at the other
end of a request that looked safe when a listener was probed. So the check
is made on the connected socket itself, after connect and before its first
byte: its own 4-tuple is looked up (``_tcpowner``), and the token goes only
when the other end belongs to this user. Another user, an owner that can
not be named, or no socket at all: refused. Root is refused too unless the
caller opted in (``unsafe_cleartext=True``): before its accept() a root-made
socket handed to a service of another user still reports root.

``session()`` / ``httpx_client()`` build clients whose every new plain-http
connection to loopback is checked this way; ``KcAgentAuth`` puts a token
on a plain-http loopback request only inside such a client."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import ipaddress
import os
import sys
from typing import Iterator, Optional
from urllib.parse import urlsplit

from . import _tcpowner
from ._errors import KcAgentError, UntrustedAgent

_checked: contextvars.ContextVar[bool] = contextvars.ContextVar("kc_agent_checked_client", default=False)

UNCHECKED_HINT = (
    "send it through a client that checks its connections: `kc_agent_client.session()` (requests) "
    "or `kc_agent_client.httpx_client()`; or use an https:// URL"
)


def is_loopback_host(host: str) -> bool:
    """The one loopback rule (the Go twin is internal/loopback.Host, both
    held to internal/loopback/testdata/hosts.json): "localhost" in any case,
    with or without a trailing dot, 127.0.0.0/8, ::1, and the IPv4-mapped
    spellings of 127.0.0.0/8 (Python 3.13's ipaddress calls those loopback,
    3.11 does not: the rule must not depend on the version)."""
    h = host.lower()
    if h.startswith("["):
        h = h[1:].split("]", 1)[0]  # [v6] or [v6]:port
    elif h.count(":") == 1:
        h = h.split(":", 1)[0]  # host:port
    if h.endswith("."):
        h = h[:-1]
    if h == "localhost":
        return True
    if "%" in h:
        return False  # a zone: never loopback (Go's parser refuses it too)
    try:
        return ipaddress.ip_address(_tcpowner.unmapped(h)).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def checked_client() -> Iterator[None]:
    """Marks the requests a checking client prepares (KcAgentAuth asks)."""
    tok = _checked.set(True)
    try:
        yield
    finally:
        _checked.reset(tok)


def in_checked_client() -> bool:
    return _checked.get()


def check_socket(sock, unsafe_cleartext: bool = False) -> None:
    """Raises UntrustedAgent unless the connected socket's other end is not
    on loopback (TLS or the caller's own rules apply there) or belongs to
    this user. unsafe_cleartext lets through an owner that can not be named
    or a root one, never another known user: the same meaning the agent's
    unsafe_cleartext_* settings have."""
    peer = tuple(sock.getpeername()[:2])
    local = tuple(sock.getsockname()[:2])
    try:
        if not ipaddress.ip_address(_tcpowner.unmapped(peer[0])).is_loopback:
            return
    except ValueError:
        return
    where = f"{_tcpowner.unmapped(peer[0])}:{peer[1]}"
    try:
        owner = _tcpowner.connection_owner(peer, local)
        if owner is None:
            raise _tcpowner.NoOwner("the connection is not in the kernel's tables")
    except (_tcpowner.Unsupported, _tcpowner.NoOwner) as e:
        if unsafe_cleartext:
            return
        raise UntrustedAgent(
            f"can not tell who listens on {where} ({e}): no token is sent there in the clear",
            hint="use https, or pass unsafe_cleartext=True if only you can listen on this machine",
        ) from None
    mine = _tcpowner.me()
    if owner == mine:
        return
    if _tcpowner.is_superuser(owner):
        # Root also stands for a connection the kernel has not handed to
        # its listener yet, or one already closed: then the listener says.
        lst = _tcpowner.listener_owner(peer)
        if lst == mine or unsafe_cleartext:
            return
        owner = lst if lst is not None else owner
    raise UntrustedAgent(
        f"refusing to send a token in the clear to {where}: it is served by {_describe(owner)}, not by you ({_describe(mine)})",
        hint=_refusal_hint(owner),
    )


def _describe(o) -> str:
    return f"uid {o}" if isinstance(o, int) else f"user {o}"


def _refusal_hint(owner) -> str:
    if _tcpowner.is_superuser(owner):
        return "root's listeners may hand connections to other users; if this one is yours, pass unsafe_cleartext=True, or use https"
    return "another user holds the port; start your server on another port, or use https"


def _refuse_closing(sock, unsafe_cleartext: bool) -> None:
    try:
        check_socket(sock, unsafe_cleartext)
    except BaseException:
        try:
            sock.close()
        except OSError:
            pass
        raise


def check_listener(url: str) -> None:
    """On Linux, checks that a route's address is served by this user (the
    agent said so; a client trusts what it can check): another user who
    holds the port would receive the requests. route_url asks before it
    hands a URL out; the connections made to it are checked again
    (check_socket)."""
    if not sys.platform.startswith("linux"):
        return
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    addrs = ["127.0.0.1", "::1"] if host.lower().rstrip(".") == "localhost" else [host]
    uid = None
    for a in addrs:
        uid = _listener_uid(a, port)
        if uid is not None:
            break
    if uid is None:
        raise KcAgentError(f"nobody listens on the route address {host}:{port}", hint="the agent's proxy stopped; see `kc-agent status`")
    if uid != os.getuid():
        raise UntrustedAgent(
            f"the route address {host}:{port} is served by uid {uid}, not by you (uid {os.getuid()})",
            hint="another user holds the port: set proxy.listen to another port in your config (127.0.0.1:0 picks a free one)",
        )


def _listener_uid(ip: str, port: int) -> Optional[int]:
    # Either spelling of an IPv4 address, either table, or the port's
    # wildcard address (_tcpowner.listener_owner); None when nobody listens.
    try:
        owner = _tcpowner.listener_owner((ip, port))
    except (ValueError, _tcpowner.Unsupported, _tcpowner.NoOwner):
        return None
    return owner if isinstance(owner, int) else None


# --- requests ---------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _requests_classes():
    from requests import Session
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection
    from urllib3.connectionpool import HTTPConnectionPool

    class CheckedHTTPConnection(HTTPConnection):
        kc_unsafe_cleartext = False

        def connect(self):
            super().connect()
            _refuse_closing(self.sock, self.kc_unsafe_cleartext)

    class UnsafeCheckedHTTPConnection(CheckedHTTPConnection):
        kc_unsafe_cleartext = True

    class CheckedPool(HTTPConnectionPool):
        ConnectionCls = CheckedHTTPConnection

    class UnsafeCheckedPool(HTTPConnectionPool):
        ConnectionCls = UnsafeCheckedHTTPConnection

    class CheckedAdapter(HTTPAdapter):
        """An http:// adapter whose every new connection to loopback is
        checked (check_socket) before its first byte."""

        def __init__(self, *args, unsafe_cleartext: bool = False, **kwargs) -> None:
            self.kc_unsafe_cleartext = unsafe_cleartext
            super().__init__(*args, **kwargs)

        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            pool = UnsafeCheckedPool if self.kc_unsafe_cleartext else CheckedPool
            self.poolmanager.pool_classes_by_scheme = dict(self.poolmanager.pool_classes_by_scheme, http=pool)

        def __setstate__(self, state):
            self.kc_unsafe_cleartext = state.get("kc_unsafe_cleartext", False)
            super().__setstate__(state)

        def send(self, request, *args, **kwargs):
            # A proxy would get the token in the clear, on a connection to it.
            from urllib.parse import urlsplit

            if is_loopback_host(urlsplit(request.url).hostname or ""):
                kwargs["proxies"] = {}
            return super().send(request, *args, **kwargs)

    class CheckedSession(Session):
        def prepare_request(self, request):
            with checked_client():
                return super().prepare_request(request)

    return CheckedAdapter, CheckedSession


def requests_session(unsafe_cleartext: bool = False):
    adapter_cls, session_cls = _requests_classes()
    s = session_cls()
    s.mount("http://", adapter_cls(unsafe_cleartext=unsafe_cleartext))
    return s


def is_checked_adapter(adapter) -> bool:
    return isinstance(adapter, _requests_classes()[0])


# --- httpx ------------------------------------------------------------------


class _Stream:
    """An httpcore network stream checked before its first plain write; a
    stream that starts TLS is left alone (the certificate says who
    answers)."""

    def __init__(self, inner, unsafe: bool) -> None:
        self._inner, self._unsafe, self._done = inner, unsafe, False

    def _check(self) -> None:
        if not self._done:
            self._done = True
            # On a refusal httpcore closes the connection, unused.
            check_socket(self._inner.get_extra_info("socket"), self._unsafe)

    def write(self, buffer, *args, **kwargs):
        self._check()
        return self._inner.write(buffer, *args, **kwargs)

    def start_tls(self, *args, **kwargs):
        self._done = True
        return self._inner.start_tls(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _AsyncStream(_Stream):
    async def write(self, buffer, *args, **kwargs):
        self._check()
        return await self._inner.write(buffer, *args, **kwargs)

    async def start_tls(self, *args, **kwargs):
        self._done = True
        return await self._inner.start_tls(*args, **kwargs)


class _Backend:
    def __init__(self, inner, unsafe: bool) -> None:
        self._inner, self._unsafe = inner, unsafe

    def connect_tcp(self, *args, **kwargs):
        return _Stream(self._inner.connect_tcp(*args, **kwargs), self._unsafe)

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _AsyncBackend(_Backend):
    async def connect_tcp(self, *args, **kwargs):
        return _AsyncStream(await self._inner.connect_tcp(*args, **kwargs), self._unsafe)


def _checked_transport(httpx, asynchronous: bool, unsafe: bool, **kwargs):
    t = (httpx.AsyncHTTPTransport if asynchronous else httpx.HTTPTransport)(**kwargs)
    pool = getattr(t, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):
        raise KcAgentError(
            f"this httpx ({httpx.__version__}) has no connection pool kc-agent-client can check",
            hint="install httpx 0.23 or newer, or use kc_agent_client.session() (requests)",
        )
    pool._network_backend = (_AsyncBackend if asynchronous else _Backend)(pool._network_backend, unsafe)
    return t


def httpx_client(asynchronous: bool = False, unsafe_cleartext: bool = False, **kwargs):
    """An httpx.Client (AsyncClient) whose connections are all checked: the
    checked transport is both the default and the http:// mount, so neither
    an environment proxy nor a NO_PROXY exception routes around it."""
    import httpx

    def transport():
        return _checked_transport(httpx, asynchronous, unsafe_cleartext, verify=kwargs.get("verify", True))

    mounts = dict(kwargs.pop("mounts", None) or {})
    mounts["http://"] = transport()
    base = httpx.AsyncClient if asynchronous else httpx.Client

    class CheckedClient(base):  # type: ignore[misc,valid-type]
        def send(self, *args, **kw):
            with checked_client():
                return super().send(*args, **kw)

    class CheckedAsyncClient(base):  # type: ignore[misc,valid-type]
        async def send(self, *args, **kw):
            with checked_client():
                return await super().send(*args, **kw)

    cls = CheckedAsyncClient if asynchronous else CheckedClient
    return cls(transport=transport(), mounts=mounts, **kwargs)
