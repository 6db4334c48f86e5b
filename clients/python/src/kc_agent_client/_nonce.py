"""The DPoP nonces servers handed out (RFC 9449 section 8), one per origin:
the last ``DPoP-Nonce`` an origin sent goes into the next proof for it, so
that only the first request to a nonce-demanding API meets the challenge.
Kept for the process (KcAgentAuth objects come and go per call in
notebooks), for a bounded number of origins. A nonce is not a secret."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Mapping, Optional
from urllib.parse import urlsplit

MAX_ORIGINS = 256
# RFC 9449's nonce: 1*NQCHAR (visible ASCII but '"' and '\'); a longer or
# other one is not kept.
_NONCE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,512}")

_lock = threading.Lock()
_nonces: "OrderedDict[str, str]" = OrderedDict()


def origin(url: str) -> str:
    """scheme://host:port, the port spelled out (a nonce is the server's)."""
    p = urlsplit(url)
    scheme = (p.scheme or "").lower()
    try:
        port = p.port or {"https": 443, "http": 80}.get(scheme, 0)
    except ValueError:
        port = 0
    host = (p.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def get(url: str) -> str:
    with _lock:
        return _nonces.get(origin(url), "")


def remember(url: str, nonce: Optional[str]) -> bool:
    """Keeps nonce for url's origin when it is one; says whether it was."""
    if not nonce or not _NONCE.fullmatch(nonce):
        return False
    key = origin(url)
    with _lock:
        _nonces[key] = nonce
        _nonces.move_to_end(key)
        while len(_nonces) > MAX_ORIGINS:
            _nonces.popitem(last=False)
    return True


def challenge(status: int, headers: Mapping[str, str]) -> str:
    """The nonce a 401 asks the next proof to carry: its WWW-Authenticate
    names the error use_dpop_nonce and DPoP-Nonce holds a nonce. "" for any
    other answer."""
    if status != 401:
        return ""
    www = headers.get("WWW-Authenticate") or ""
    nonce = headers.get("DPoP-Nonce") or ""
    if "use_dpop_nonce" not in www.lower() or not _NONCE.fullmatch(nonce):
        return ""
    return nonce


def forget_all() -> None:
    """For tests."""
    with _lock:
        _nonces.clear()
