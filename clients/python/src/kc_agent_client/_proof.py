"""The headers for one request, from the agent's POST /v1/proof: the caller
sends the request's method and URL, the agent answers its current access
token for the profile and, when the login's access tokens are DPoP-bound
(``dpop: on``), a proof for that request signed with the login's key. The
key never leaves the agent. A proof is for one request (its own ``jti``,
``htm``, ``htu`` and ``iat``): nothing here caches or reuses one.

An agent older than the endpoint gets the caller a Bearer token the usual
way (/v1/token); where no agent answers on a socket, the kc-agent command
starts one and the socket is asked again (only the agent signs proofs)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from . import _cli, _client, _discovery, _transport
from ._errors import START_HINT, KcAgentError

PATH = "/v1/proof"

# A proof is a compact JWS: three base64url parts. Anything else (a space,
# a line break) would be read differently by a header line: never sent.
_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def is_dpop(token_type: str) -> bool:
    """Whether a token type names a DPoP-bound token (RFC 9449 spells it
    "DPoP"; the comparison ignores case, as token types are)."""
    return token_type.lower() == "dpop"


@dataclass(frozen=True)
class Proof:
    """The access token and, for a DPoP-bound one, the proof of one
    request. Its repr never shows either."""

    access_token: str = field(repr=False)
    token_type: str
    proof: str = field(repr=False)  # "" for a Bearer token
    profile: str

    def headers(self) -> Dict[str, str]:
        if is_dpop(self.token_type):
            return {"Authorization": f"DPoP {self.access_token}", "DPoP": self.proof}
        return {"Authorization": f"{self.token_type} {self.access_token}"}

    def __repr__(self) -> str:
        return f"Proof(profile={self.profile!r}, token_type={self.token_type!r}, access_token=<hidden>, proof=<hidden>)"

    __str__ = __repr__


def fetch(
    profile: Optional[str],
    scopes: Optional[List[str]],
    min_valid: Optional[float],
    method: str,
    url: str,
    nonce: str = "",
    force_refresh: bool = False,
) -> Proof:
    """The Authorization (and DPoP) headers' contents for one request of
    method to url, the server's last DPoP nonce for url's origin included.
    Raises LoginRequired (a bound login whose key is gone is one: the agent
    says login_required), AgentUnavailable, UntrustedAgent or KcAgentError."""
    name = _client.profile_name(profile)
    body: dict = {"profile": name, "method": method.upper(), "url": url}
    if scopes:
        body["scopes"] = [str(s) for s in scopes]
    if min_valid is not None:
        body["min_valid"] = float(min_valid)
    if nonce:
        body["nonce"] = nonce
    if force_refresh:
        body["force_refresh"] = True
    try:
        try:
            _, doc = _transport.request("POST", PATH, body, skew=False)
        except _transport.NoAgent as na:
            if not _discovery.can_connect():
                raise
            # The command starts the agent (and says nothing else we need:
            # the agent itself answers below).
            _cli.start_agent(name, na)
            _, doc = _transport.request("POST", PATH, body, skew=False)
    except _transport.NoEndpoint:
        return _bearer(name, scopes, min_valid, force_refresh, older=True)
    except _transport.NoAgent:
        return _bearer(name, scopes, min_valid, force_refresh, older=False)
    return _read(doc, name)


def _read(doc: dict, name: str) -> Proof:
    info = _client.token_info(doc, name)  # checks the token as /v1/token's
    if not is_dpop(info.token_type):
        return Proof(info.access_token, info.token_type, "", name)
    proof = doc.get("proof")
    if not isinstance(proof, str) or not _JWS.fullmatch(proof):
        raise KcAgentError(
            f"the agent answered a DPoP-bound token for profile {name!r} without a usable proof; refusing to send it",
            hint="see `kc-agent status` and the agent's log; report this if it persists",
        )
    return Proof(info.access_token, "DPoP", proof, name)


def _bearer(name: str, scopes: Optional[List[str]], min_valid: Optional[float], force: bool, older: bool) -> Proof:
    """An agent without /v1/proof (older), or none on a socket (the CLI
    answers; it refuses a bound token itself): a token, of use only as
    Bearer."""
    info = _client.fetch_token(name, scopes, min_valid, force)
    if not is_dpop(info.token_type):
        return Proof(info.access_token, info.token_type, "", name)
    if older:
        raise KcAgentError(
            f"the agent serves profile {name!r} DPoP-bound tokens but can not sign proofs for them: it is older than this client",
            hint="restart the agent so that the newer kc-agent runs: `kc-agent service restart`, or stop it (the client starts its own kc-agent)",
            code="agent_too_old",
        )
    raise KcAgentError(
        f"profile {name!r} serves DPoP-bound tokens, whose proofs only a running agent signs, and no agent answers on a socket here",
        hint=START_HINT,
        code="unreachable",
    )
