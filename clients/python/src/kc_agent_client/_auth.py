"""KcAgentAuth: one object that works as ``auth=`` for requests and for
httpx (sync and async). Each request gets ``Authorization`` (and, for a
DPoP-bound token, a ``DPoP`` proof for that request) from the agent; on a
401 the auth sends the request once more: with the server's DPoP nonce
when it asked for one, else with a freshly issued token."""

from __future__ import annotations

from typing import Iterable, Optional
from urllib.parse import urlsplit

from . import _client, _connguard, _nonce, _proof
from ._errors import KcAgentError

try:  # optional extra [requests]
    from requests.auth import AuthBase as _RequestsAuthBase
    from requests.cookies import extract_cookies_to_jar as _extract_cookies
except ImportError:  # pragma: no cover - depends on the environment
    _RequestsAuthBase = object  # type: ignore[assignment,misc]
    _extract_cookies = None

try:  # optional extra [httpx]
    import httpx as _httpx

    _HttpxAuthBase = _httpx.Auth
except ImportError:  # pragma: no cover - depends on the environment
    _httpx = None
    _HttpxAuthBase = object  # type: ignore[assignment,misc]


def _check_destination(url: str, checked: bool) -> None:
    """A token goes over TLS, or to this machine on a connection whose other
    end was checked (checked: the client checks every new connection, see
    _connguard): never in cleartext across a network, never to a loopback
    port on a connection nobody looked at."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    host = parts.hostname or ""
    if parts.scheme == "http" and _connguard.is_loopback_host(host):
        if checked:
            return
        raise KcAgentError(
            f"refusing to send a token in the clear to {host}:{parts.port or 80} on a connection that is not checked: "
            "another user of this machine may be listening there",
            hint=_connguard.UNCHECKED_HINT,
        )
    raise KcAgentError(
        f"refusing to send a token over plain {parts.scheme or 'unknown scheme'} to {host or url}",
        hint="use an https:// URL, or a kc-agent route (route_url) for local access",
    )


# Whichever of the two libraries is installed (the core needs neither).
_BASES = tuple(b for b in (_RequestsAuthBase, _HttpxAuthBase) if b is not object) or (object,)


class KcAgentAuth(*_BASES):  # type: ignore[misc]
    """``auth=KcAgentAuth()`` for requests and httpx.

    Every request carries the profile's token (``$KC_AGENT_PROFILE``, else
    ``default``): ``Authorization: Bearer <token>``, or, when the login's
    access tokens are DPoP-bound (``dpop: on``), ``Authorization: DPoP
    <token>`` and a ``DPoP`` proof the agent signs for this request's
    method and URL (the key stays in the agent; a proof is never reused).

    On a 401 the request is sent once more, and only once: with a proof
    that carries the server's nonce when the answer is a ``use_dpop_nonce``
    challenge (the nonce is kept per origin for the next requests), else
    with a token issued after that answer (``force_refresh``). A second 401
    is returned to the caller as is, as is a 401 to a streamed body.

    A redirect's request goes without the DPoP proof and token (they name
    the first URL), and its answer is never retried: the first request is
    not sent twice. With httpx that takes ``httpx_client()``'s hook.
    """

    # httpx: the body is not buffered for us; a streamed body is not retried.
    requires_request_body = False
    requires_response_body = False

    def __init__(self, profile: Optional[str] = None, scopes: Optional[Iterable[str]] = None, min_valid: Optional[float] = None) -> None:
        self.profile = profile
        self.scopes = list(scopes.split() if isinstance(scopes, str) else scopes) if scopes else None
        self.min_valid = min_valid

    def __repr__(self) -> str:
        return f"KcAgentAuth(profile={_client.profile_name(self.profile)!r}, scopes={self.scopes!r}, min_valid={self.min_valid!r})"

    def _apply(self, headers, method: str, url: str, force: bool = False) -> None:
        """Sets this request's Authorization (and DPoP) headers, from a proof
        the agent signs for method and url with the origin's last nonce."""
        p = _proof.fetch(self.profile, self.scopes, self.min_valid, method, url, _nonce.get(url), force)
        h = p.headers()
        if "DPoP" not in h:
            headers.pop("DPoP", None)
        headers.update(h)

    # --- requests ----------------------------------------------------------

    def __call__(self, r):
        _check_destination(r.url, _connguard.in_checked_client())
        self._apply(r.headers, r.method, r.url)
        # The retry on 401 is for this request only: requests copies the
        # hook onto redirected requests (another host, maybe), not this mark.
        r._kc_agent_url = r.url
        try:
            r._kc_agent_body_pos = r.body.tell()  # a file body is rewound for the retry
        except Exception:
            r._kc_agent_body_pos = None
        r.register_hook("response", self._requests_retry_on_401)
        return r

    def _requests_retry_on_401(self, r, **kwargs):
        if getattr(r.request, "_kc_agent_url", None) != r.request.url or r.history:
            return r  # a redirect's answer: never send a token after it
        nonce = _after(r.request.headers, r.request.url, r.status_code, r.headers)
        if r.is_redirect:
            # requests builds the redirect's request from a copy of this
            # one after this hook: what is dropped here never goes there.
            _drop_proof(r.request.headers)
            return r
        if r.status_code != 401 or getattr(r.request, "_kc_agent_retried", False):
            return r
        _check_destination(r.request.url, _connguard.is_checked_adapter(r.connection))
        body = r.request.body
        if body is not None and not isinstance(body, (bytes, str)):
            pos = getattr(r.request, "_kc_agent_body_pos", None)
            if pos is None or not hasattr(body, "seek"):
                return r  # a streamed body can not be sent twice
            body.seek(pos)
        prep = r.request.copy()
        prep._kc_agent_retried = True
        self._apply(prep.headers, prep.method, prep.url, force=not nonce)
        r.content  # read the 401 so the connection can be reused
        r.close()
        if _extract_cookies is not None:
            _extract_cookies(prep._cookies, r.request, r.raw)
            prep.prepare_cookies(prep._cookies)
        retry = r.connection.send(prep, **kwargs)
        _after(prep.headers, prep.url, retry.status_code, retry.headers)
        if retry.is_redirect:
            _drop_proof(r.request.headers)  # the redirect is built from the first request
        retry.history.append(r)
        retry.request = prep
        return retry

    # --- httpx -------------------------------------------------------------

    def sync_auth_flow(self, request):
        url = str(request.url)
        _check_destination(url, _connguard.in_checked_client())
        self._apply(request.headers, request.method, url)
        _mark_signed(request)
        response = yield request
        nonce = _httpx_after(request, url, response)
        if nonce is not None and response.status_code == 401 and _replayable(request):
            self._apply(request.headers, request.method, url, not nonce)
            _mark_signed(request)
            response = yield request
            _httpx_after(request, url, response)

    async def async_auth_flow(self, request):
        url = str(request.url)
        _check_destination(url, _connguard.in_checked_client())
        # The socket call blocks; it runs in a worker thread so the event
        # loop keeps serving other tasks meanwhile.
        await _in_thread(self._apply, request.headers, request.method, url)
        _mark_signed(request)
        response = yield request
        nonce = _httpx_after(request, url, response)
        if nonce is not None and response.status_code == 401 and _replayable(request):
            await _in_thread(self._apply, request.headers, request.method, url, not nonce)
            _mark_signed(request)
            response = yield request
            _httpx_after(request, url, response)


def _after(sent, url: str, status: int, headers) -> str:
    """After the answer to a request sent with a DPoP proof: keeps the
    nonce the server sent for url's origin (RFC 9449 lets any answer carry
    the next one), and returns the nonce when the answer is a
    use_dpop_nonce challenge ("" otherwise: a 401 then means the token)."""
    if "DPoP" not in sent:
        return ""
    _nonce.remember(url, headers.get("DPoP-Nonce"))
    return _nonce.challenge(status, headers)


def _drop_proof(headers) -> None:
    """A redirect's request goes without the DPoP proof and the DPoP-bound
    token: the proof names the first request's method and URL, and the
    libraries copy it to the redirect's target, same origin or not
    (requests and httpx strip only Authorization, and only across
    origins). A Bearer token is left to the library's rules."""
    if "DPoP" in headers:
        del headers["DPoP"]
        if (headers.get("Authorization") or "").lower().startswith("dpop "):
            del headers["Authorization"]


# httpx: a request KcAgentAuth put a proof on carries itself under this key
# of its extensions. A redirect's request gets the same extensions and a
# copy of the headers from httpx, never a new call of the auth flow: a
# request that carries the mark but is not the marked one is a redirect's.
_SIGNED = "kc_agent_client.signed"


def _mark_signed(request) -> None:
    if "DPoP" in request.headers:
        request.extensions = {**request.extensions, _SIGNED: request}


def drop_redirected_proof(request) -> None:
    """httpx_client()'s request hook: drops the token and proof KcAgentAuth
    put on a request from httpx's copy of it for a redirect."""
    signed = request.extensions.get(_SIGNED)
    if signed is not None and signed is not request:
        _drop_proof(request.headers)


async def drop_redirected_proof_async(request) -> None:
    drop_redirected_proof(request)


def _httpx_after(request, url: str, response) -> Optional[str]:
    """_after for httpx, which follows redirects inside the auth flow: the
    answer may be to another request, to another URL. A nonce is kept for
    the server that sent it. Returns the challenge's nonce ("" for none),
    or None for an answer that came through redirects: the request is then
    never sent again (its server handled it and answered the redirect; the
    401 is another's)."""
    final = response.request
    if final is request:
        return _after(request.headers, url, response.status_code, response.headers)
    ours = next((r for r in reversed(response.history) if r.request is request), None)
    if ours is not None:
        _after(request.headers, url, ours.status_code, ours.headers)
    if "DPoP" in final.headers:
        _client.log.warning(
            "httpx followed a redirect from %s to %s with the DPoP proof made for the first request; "
            "send through kc_agent_client.httpx_client(), which leaves it off a redirect's request, or don't follow redirects",
            _nonce.origin(url),
            _nonce.origin(str(final.url)),
        )
    _after(final.headers, str(final.url), response.status_code, response.headers)
    return None


def _replayable(request) -> bool:
    try:
        request.content  # set for bytes, str, json= and data= bodies
        return True
    except Exception:
        return False  # a streamed body was consumed by the first attempt


async def _in_thread(fn, *args):
    """Runs fn in a worker thread under asyncio or trio (anyio, which httpx
    brings, knows both)."""
    try:
        import anyio.to_thread

        return await anyio.to_thread.run_sync(fn, *args)
    except ImportError:  # pragma: no cover - httpx without anyio
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
