"""Getting a token: from the verified agent's socket (_transport), or from
the kc-agent command (``kc-agent token --format json``, _cli) where no
agent answers there; the CLI also starts the agent. Both answers are read
into a TokenInfo by one rule."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, List, Optional

from . import _cli, _transport
from ._answer import parse_time
from ._errors import KcAgentError

log = logging.getLogger("kc_agent_client")


@dataclass(frozen=True)
class TokenInfo:
    """An access token and when it expires. Its repr never shows the token."""

    access_token: str = field(repr=False)
    token_type: str
    expires_at: datetime
    expires_in: int
    profile: str

    def __repr__(self) -> str:
        return (
            f"TokenInfo(profile={self.profile!r}, token_type={self.token_type!r}, "
            f"expires_at={self.expires_at.isoformat()!r}, expires_in={self.expires_in}, access_token=<hidden>)"
        )

    __str__ = __repr__


def profile_name(profile: Optional[str]) -> str:
    return profile or os.environ.get("KC_AGENT_PROFILE") or "default"


# RFC 6750's b64token, the rule kc-agent's Go programs apply too
# (internal/bearer): a token with a quote, a space or a line break would be
# read differently by a header line or a shell, and is never handed on.
_BEARER = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def token_info(doc: dict, profile: str) -> TokenInfo:
    tok = doc.get("access_token")
    if not isinstance(tok, str) or not tok:
        raise KcAgentError("the agent answered without a token")
    token_type = doc.get("token_type") or "Bearer"
    if not _BEARER.fullmatch(tok) or not isinstance(token_type, str) or not _BEARER.fullmatch(token_type):
        raise KcAgentError(
            f"the agent answered a token (or token type) with characters a bearer token can not have ({len(tok)} characters); refusing to use it",
            hint="check the identity provider's tokens (kc-agent status shows the issuer)",
        )
    try:
        expires_at = parse_time(str(doc.get("expires_at", "")))
    except ValueError:
        raise KcAgentError("the agent's answer has no valid expires_at") from None
    return TokenInfo(
        access_token=tok,
        token_type=token_type,
        expires_at=expires_at,
        expires_in=int(doc.get("expires_in") or 0),
        profile=profile,
    )


def fetch_token(
    profile: Optional[str] = None,
    scopes: Optional[Iterable[str]] = None,
    min_valid: Optional[float] = None,
    force_refresh: bool = False,
) -> TokenInfo:
    name = profile_name(profile)
    if isinstance(scopes, str):
        scopes = scopes.split()
    scope_list = [str(s) for s in scopes] if scopes else []
    body: dict = {"profile": name}
    # None: the agent's default margin, which follows the token's lifetime
    # (a fixed 60 s refreshed 60 s tokens on nearly every call).
    if min_valid is not None:
        body["min_valid"] = float(min_valid)
    if scope_list:
        body["scopes"] = scope_list
    if force_refresh:
        body["force_refresh"] = True
    try:
        _, doc = _transport.request("POST", "/v1/token", body)
        info = token_info(doc, name)
        log.debug("token for profile %s from the agent's socket, expires %s", name, info.expires_at.isoformat())
        return info
    except _transport.NoAgent as na:
        log.debug("no agent answers on a socket (%s); asking the kc-agent CLI", na.why)
        return _token_via_cli(name, scope_list, min_valid, force_refresh, na)


def _token_via_cli(name: str, scopes: List[str], min_valid: Optional[float], force: bool, na: _transport.NoAgent) -> TokenInfo:
    args = ["token", "--format", "json", "--profile", name]
    if min_valid is not None:
        args += ["--min-valid", f"{int(min_valid)}s"]
    for s in scopes:
        args += ["--scope", s]
    if force:
        args.append("--force-refresh")
    info = token_info(_cli.json_answer(args, na), name)
    log.debug("token for profile %s from the kc-agent CLI, expires %s", name, info.expires_at.isoformat())
    return info
