"""The agent's sign-in API (POST/GET/DELETE /v1/login, the sign-ins in
/v1/status): its answer read into a LoginStatus, the Go side's
ipc.LoginStatus, with the identity provider's text already made printable
(_idp), so that nothing downstream reads a raw dict or shows a raw string.
The device code and the tokens never leave the agent; nothing here holds
one."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Dict, List, Optional
from urllib.parse import quote

from . import _cli, _idp, _transport
from ._answer import parse_time
from ._errors import START_HINT, AgentUnavailable, KcAgentError, KcAgentWarning

PENDING = "pending"


@dataclass(frozen=True)
class LoginIdentity:
    """Who signed in, from the ID token the agent verified (ipc.LoginIdentity)."""

    preferred_username: str = ""
    sub: str = field(default="", repr=False)
    email: str = field(default="", repr=False)
    name: str = field(default="", repr=False)


@dataclass(frozen=True)
class LoginStatus:
    """A sign-in the agent runs (ipc.LoginStatus). Text from the identity
    provider (user code, links, error and hint, the identity) is printable;
    the rest is the agent's own: an id to send back, a profile and a client
    from the config, which a display still cleans before it shows them."""

    id: str = ""
    profile: str = ""
    flow: str = ""
    state: str = ""
    joined: bool = False
    started_at: Optional[datetime] = None
    expires_at: Optional[datetime] = None
    client_id: str = ""
    client_name: str = ""
    verification_uri: str = ""
    verification_uri_complete: str = ""
    user_code: str = ""
    interval: int = 0
    qr_svg: str = field(default="", repr=False)
    authorization_url: str = ""
    identity: Optional[LoginIdentity] = None
    # Where the offline token is kept, and the seconds until its session's
    # fixed end (0: none), once the state is done.
    kept_in: str = ""
    offline_expires_in: int = 0
    error: str = ""
    hint: str = ""

    @property
    def link(self) -> str:
        """The page the user opens: the authorization URL of a browser
        sign-in, the verification link of a device one."""
        if self.flow == "browser":
            return self.authorization_url
        return self.verification_uri_complete or self.verification_uri

    @property
    def pending(self) -> bool:
        return self.state == PENDING

    @classmethod
    def from_answer(cls, doc: dict) -> "LoginStatus":
        """Reads a sign-in answer as the earlier dict readers did: a missing
        or null field is empty, any other value its str()."""
        ident = doc.get("identity")
        return cls(
            id=_str(doc.get("id")),
            profile=_str(doc.get("profile")),
            flow=_str(doc.get("flow")),
            state=_str(doc.get("state")),
            joined=bool(doc.get("joined")),
            started_at=_time(doc.get("started_at")),
            expires_at=_time(doc.get("expires_at")),
            client_id=_str(doc.get("client_id")),
            client_name=_str(doc.get("client_name")),
            verification_uri=_text(doc.get("verification_uri")),
            verification_uri_complete=_text(doc.get("verification_uri_complete")),
            user_code=_text(doc.get("user_code")),
            interval=_int(doc.get("interval")),
            qr_svg=_str(doc.get("qr_svg")),
            authorization_url=_text(doc.get("authorization_url")),
            identity=_identity(ident) if isinstance(ident, dict) else None,
            kept_in=_str(doc.get("kept_in")),
            offline_expires_in=_int(doc.get("offline_expires_in")),
            error=_text(doc.get("error")),
            hint=_text(doc.get("hint")),
        )


def _str(v) -> str:
    return str(v) if v else ""


def _text(v) -> str:
    # The identity provider's words: shown, so made printable as read.
    return _idp.printable(_str(v))


def _int(v) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def _time(v) -> Optional[datetime]:
    try:
        return parse_time(str(v or ""))
    except ValueError:
        return None


def _identity(ident: dict) -> LoginIdentity:
    return LoginIdentity(
        preferred_username=_text(ident.get("preferred_username")),
        sub=_text(ident.get("sub")),
        email=_text(ident.get("email")),
        name=_text(ident.get("name")),
    )


def _path(sign_in_id: str) -> str:
    return f"/v1/login/{quote(sign_in_id, safe='')}"


def start(profile: str, flow: str, switch_user: bool = False) -> LoginStatus:
    """Starts the profile's sign-in at the agent, or joins the one that
    runs. Where no agent answers, the CLI starts one first. switch_user lets
    the sign-in replace a stored login of another user (the agent refuses
    that otherwise)."""
    body: Dict[str, object] = {"profile": profile, "flow": flow}
    if switch_user:
        body["switch_user"] = True
    try:
        _, doc = _transport.request("POST", "/v1/login", body)
        return LoginStatus.from_answer(doc)
    except _transport.NoAgent as e:
        na = e
    _cli.start_agent(profile, na)
    try:
        _, doc = _transport.request("POST", "/v1/login", body)
        return LoginStatus.from_answer(doc)
    except _transport.NoAgent:
        raise AgentUnavailable("no kc-agent answers on a socket, so it can not run the sign-in", hint=START_HINT) from None


def poll(sign_in_id: str, wait: float) -> LoginStatus:
    """The sign-in's state once it changes, or after wait seconds."""
    try:
        _, doc = _transport.request("GET", f"{_path(sign_in_id)}?wait={wait:.1f}s")
    except _transport.NoAgent:
        raise AgentUnavailable("the agent stopped answering during the sign-in", hint=START_HINT) from None
    return LoginStatus.from_answer(doc)


def cancel(sign_in_id: str) -> LoginStatus:
    """Ends a pending sign-in; the answer is its final state."""
    _, doc = _transport.request("DELETE", _path(sign_in_id))
    return LoginStatus.from_answer(doc)


def _status() -> dict:
    try:
        _, st = _transport.request("GET", "/v1/status")
    except _transport.NoAgent:
        return {}
    return st


def open_sign_ins(profile: str) -> List[LoginStatus]:
    """The profile's pending sign-ins at the agent ([] when none answers)."""
    out, st = [], _status()
    for s in st.get("sign_ins") or []:
        if isinstance(s, dict) and s.get("profile") == profile and s.get("state") == PENDING:
            out.append(LoginStatus.from_answer(s))
    return out


def status_user(profile: str) -> str:
    """The user name the agent's status gives for the profile ("" when it
    gives none, or no agent answers): for a token that is not a JWT."""
    try:
        st = _status()
    except KcAgentError:
        return ""
    for p in st.get("profiles") or []:
        if isinstance(p, dict) and p.get("name") == profile:
            return str(p.get("user") or "")
    return ""


def logout(profile: str, all_sessions: bool = False) -> None:
    """Ends the profile's login at the agent (POST /v1/logout): the stored
    token, and the session at the provider (all_sessions: every offline
    session of the user for the client). Where no agent answers,
    `kc-agent logout` does the same in its own process."""
    body: Dict[str, object] = {"profile": profile}
    if all_sessions:
        body["all"] = True
    try:
        _, answer = _transport.request("POST", "/v1/logout", body)
    except _transport.NoAgent as na:
        _cli.run(["logout", "--profile", profile] + (["--all", "--yes"] if all_sessions else []), na)
        return
    _warn_remote(answer)


def _warn_remote(answer: Dict[str, object]) -> None:
    """The local token is gone whatever the provider said; a session the
    provider did not end (or, with all, ended on this machine only) is
    said as a warning, in the agent's words (which never hold a token)."""
    remote = answer.get("remote")
    if remote not in ("failed", "ended_here_only"):
        return
    what = "the session was not ended at the identity provider" if remote == "failed" else \
        "only this machine's session was ended; the user's sessions on other machines were not"
    why = answer.get("remote_error")
    warnings.warn("kc-agent logout: " + what + (": " + str(why) if why else ""), KcAgentWarning, stacklevel=3)
