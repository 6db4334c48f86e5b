"""Talking to the agent: HTTP/1.1 with JSON over its Unix socket (on
Windows, its named pipe), a new verified connection per call (safe in
forked kernels), and the CLI (``kc-agent token --format json``) where no
agent answers. The CLI also starts the agent."""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, Iterable, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from . import _discovery, _tcpowner
from ._agentenv import agent_environment
from ._errors import START_HINT, AgentUnavailable, KcAgentError, LoginRequired, UntrustedAgent

log = logging.getLogger("kc_agent_client")

HOST = "kc-agent.sock"  # the agent accepts no other Host
CONNECT_TIMEOUT = 2.0
# The agent gives up on Keycloak after 40 s; wait a little longer than that.
# One deadline for the whole exchange (request, wait, answer), not for each
# read: an agent dripping a byte at a time must not hold a caller forever.
REQUEST_TIMEOUT = 50.0
CLI_TIMEOUT = 90.0
MAX_ANSWER = 4 << 20


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


class _NoAgent(Exception):
    """No agent answered at any candidate; the CLI may still reach one."""

    def __init__(self, paths: Sequence[str], why: str) -> None:
        super().__init__(why)
        self.paths = list(paths)
        self.why = why


def _request(method: str, path: str, body: Optional[dict] = None) -> Tuple[int, dict]:
    """Sends one request to the first verified agent that answers, in
    discovery order. Raises _NoAgent when none does, UntrustedAgent when the
    first candidate (where this user's agent belongs) is someone else's. A
    later candidate someone else planted is never contacted, as in the Go
    CLI (ipc.clientFor)."""
    if not _discovery.can_connect():
        raise _NoAgent([], "this Python has no Unix sockets")
    paths = _discovery.candidates()
    if not paths:
        raise _NoAgent([], "no place for the agent's socket (set KC_AGENT_SOCK)")
    why = ""
    for i, p in enumerate(paths):
        try:
            sock = _discovery.connect_verified(p, CONNECT_TIMEOUT)
        except _discovery.Unreachable as e:
            why = str(e)
            continue
        except UntrustedAgent:
            if i == 0:
                raise
            continue
        return _exchange(sock, p, method, path, body)
    raise _NoAgent(paths, why)


class _DeadlineSocket:
    """A connected socket whose writes and reads all end by one deadline:
    each call waits at most for the time that is left. http.client uses
    only sendall, makefile("rb") and close of the socket it is given."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock = sock
        self._end = time.monotonic() + seconds

    def _arm(self) -> None:
        left = self._end - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline passed")
        self._sock.settimeout(left)

    def sendall(self, data) -> None:
        self._arm()
        self._sock.sendall(data)

    def recv_into(self, buf) -> int:
        self._arm()
        return self._sock.recv_into(buf)

    def makefile(self, mode: str = "rb", *args, **kwargs):
        if mode != "rb":
            raise ValueError("only binary reads go through the deadline")
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        self._sock.close()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        return self._sock.recv_into(buf)


def _exchange(sock, sock_path: str, method: str, path: str, body: Optional[dict]) -> Tuple[int, dict]:
    conn = http.client.HTTPConnection(HOST, timeout=REQUEST_TIMEOUT)
    # Already connected and verified: connect() is never called.
    conn.sock = _DeadlineSocket(sock, REQUEST_TIMEOUT)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read(MAX_ANSWER)
        status = resp.status
    except socket.timeout:
        raise AgentUnavailable(
            f"the agent at {sock_path} did not answer within {REQUEST_TIMEOUT:g} s",
            hint="see `kc-agent status`; restart the agent if it hangs",
        ) from None
    except OSError as e:
        raise AgentUnavailable(f"the agent at {sock_path} stopped answering: {e}", hint=START_HINT) from None
    except http.client.HTTPException as e:
        raise KcAgentError(f"the agent at {sock_path} sent a malformed answer: {type(e).__name__}") from None
    finally:
        conn.close()
    try:
        doc = _loads_answer(raw) if raw else {}
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        if status >= 300:
            raise KcAgentError(f"the agent answered HTTP {status}", code="internal")
        raise KcAgentError("the agent's answer is not a JSON object")
    if status == 404 and doc.get("error") == "bad_request":
        # Only the agent's catch-all answers so (an endpoint's own "not
        # found" is not_found); the message is prose, never matched.
        skew = _older_agent(sock_path, method, path)
        if skew is not None:
            raise skew
    if status >= 300:
        raise _api_error(status, doc)
    return status, doc


def _older_agent(sock_path: str, method: str, path: str) -> Optional[KcAgentError]:
    """The running agent lacks an endpoint this client uses: when its
    /v1/health reports another version than this client's, it is older (the
    socket API is versioned by path, so everything it does know keeps
    working): names both versions and the way out. The same version (or
    none reported) is not skew: None, and the caller reports the answer as
    it is. The Go client keeps the same rule (ipc.Client.Skew)."""
    from . import __version__

    try:
        _, health = _exchange(_discovery.connect_verified(sock_path, CONNECT_TIMEOUT), sock_path, "GET", "/v1/health", None)
    except (KcAgentError, _discovery.Unreachable, OSError):
        return None
    agent = str(health.get("version") or "")
    if not agent or agent == __version__:
        return None
    return KcAgentError(
        f"the agent at {sock_path} (kc-agent {agent}) does not know {method} {path}: it is older than this client (kc-agent-client {__version__})",
        hint="restart the agent so that the newer kc-agent runs: `kc-agent service restart`, or stop it (the client starts its own kc-agent)",
        code="agent_too_old",
    )


# The keys of the answers this module reads (the token answer, the error
# body, /v1/proxy): a key spelled like one of these in other letter case is
# refused, as the Go client refuses one spelled like a key it reads (see
# _loads_answer). Add a key here when you read a new one.
_ANSWER_KEYS = frozenset(
    """access_token id_token token_type expires_at expires_in error message hint
    configured running addr url ca_bundle routes name upstream profile warnings refused
    id flow state joined expires_at verification_uri verification_uri_complete user_code qr_svg
    authorization_url identity preferred_username sub email version client_id client_name""".split()
)

AMBIGUOUS_ANSWER = "the agent's answer has a duplicate key (or two spellings of one key); refusing it"


def _fold_char(c: str) -> str:
    # The class is closed under one-character lower() and upper(): k, K
    # and the Kelvin sign; s, S and the long s; sigma's three forms.
    orbit, todo = {c}, [c]
    while todo:
        x = todo.pop()
        for y in (x.lower(), x.upper()):
            if len(y) == 1 and y not in orbit:
                orbit.add(y)
                todo.append(y)
    return min(orbit)


def _fold(key: str) -> str:
    """One spelling per simple case-folding class, as Go's strings.EqualFold
    (and so encoding/json) compares keys: "Access_Token", "ACCESS_TOKEN" and
    "acce\u017f\u017f_token" (long s) all fold to one."""
    return "".join(_fold_char(c) for c in key)


_FOLDED_KEYS = {_fold(k): k for k in _ANSWER_KEYS}


class _AmbiguousAnswer(Exception):
    pass


def _unique_keys(pairs: List[Tuple[str, object]]) -> dict:
    seen = set()
    for k, _ in pairs:
        f = _fold(k)
        if f in seen or _FOLDED_KEYS.get(f, k) != k:
            raise _AmbiguousAnswer()
        seen.add(f)
    return dict(pairs)


def _loads_answer(raw) -> object:
    """json.loads, refusing (KcAgentError) an answer in which any object has
    two keys that fold alike or a key spelled like one of the protocol's in
    other letter case: json keeps the last exact match and Go's
    encoding/json the last case-insensitive one, so such an answer would
    mean one token here and another to the Go CLI (see
    ipc/testdata/duplicate_keys.json). ValueError when raw is not JSON."""
    try:
        return json.loads(raw, object_pairs_hook=_unique_keys)
    except _AmbiguousAnswer:
        raise KcAgentError(AMBIGUOUS_ANSWER, code="internal") from None


def _api_error(status: int, doc: dict) -> KcAgentError:
    code = str(doc.get("error") or "internal")
    msg = str(doc.get("message") or f"the agent answered HTTP {status}")
    # The agent's hints name CLI flags; here the knob is a parameter.
    hint = str(doc.get("hint") or "").replace("--min-valid", "min_valid")
    if status == 401 or code in ("login_required", "unknown_profile"):
        return LoginRequired(msg, hint=hint, code=code)
    return KcAgentError(msg, hint=hint, code=code)


def _parse_time(s: str) -> datetime:
    s = s.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    # Go may print any number of fractional digits; Python 3.9 wants 0, 3 or 6.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", s)
    if m and m.group(2):
        s = m.group(1) + (m.group(2) + "000000")[:7] + m.group(3)
    dt = datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


# RFC 6750's b64token, the rule kc-agent's Go programs apply too
# (internal/bearer): a token with a quote, a space or a line break would be
# read differently by a header line or a shell, and is never handed on.
_BEARER = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def _token_info(doc: dict, profile: str) -> TokenInfo:
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
        expires_at = _parse_time(str(doc.get("expires_at", "")))
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
        _, doc = _request("POST", "/v1/token", body)
        info = _token_info(doc, name)
        log.debug("token for profile %s from the agent's socket, expires %s", name, info.expires_at.isoformat())
        return info
    except _NoAgent as na:
        log.debug("no agent answers on a socket (%s); asking the kc-agent CLI", na.why)
        return _token_via_cli(name, scope_list, min_valid, force_refresh, na)


# --- the CLI fallback -------------------------------------------------------


# Where the install script and package managers put kc-agent, looked at
# after PATH: kernels started by a launcher often have a shorter PATH than a
# shell. "~" is the user's home.
CLI_LOCATIONS = ("~/.local/bin", "/usr/local/bin", "/opt/homebrew/bin")


def bundled_cli() -> Optional[str]:
    """The kc-agent that came with this package (a platform wheel installs
    it beside the interpreter's scripts), or None; only one nobody else can
    replace (_bundled): UntrustedAgent otherwise."""
    from . import _bundled

    return _bundled.bundled_cli()


def find_cli() -> Optional[str]:
    """The kc-agent binary: the one this package came with (bundled_cli),
    else on PATH, else in CLI_LOCATIONS. Only absolute PATH entries count: a
    notebook's working directory (a shared or cloned folder) must not be
    able to supply a "kc-agent" whose output is taken for a token (Windows
    searches the current directory first)."""
    own = bundled_cli()
    if own:
        return own
    exe = "kc-agent.exe" if sys.platform.startswith("win") else "kc-agent"
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and os.path.isabs(d)]
    found = shutil.which(exe, path=os.pathsep.join(dirs)) if dirs else None
    if found and os.path.isabs(found):
        return found
    for d in CLI_LOCATIONS:
        cand = os.path.join(os.path.expanduser(d), exe)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def _run_cli(args: List[str], na: _NoAgent) -> str:
    exe = find_cli()
    where = ", ".join(na.paths) if na.paths else "no socket"
    if exe is None:
        raise AgentUnavailable(f"no kc-agent answers ({where}) and the kc-agent command is not on PATH", hint=START_HINT)
    try:
        # The CLI may autostart the agent: it gets the allow-listed
        # environment, never the kernel's own secrets (_agentenv).
        cp = subprocess.run(
            [exe] + args,
            env=agent_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=CLI_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise AgentUnavailable(f"`kc-agent {args[0]}` did not finish within {CLI_TIMEOUT:.0f}s", hint=START_HINT) from None
    except OSError as e:
        raise AgentUnavailable(f"can not run {exe}: {e.strerror or e}", hint=START_HINT) from None
    if cp.returncode == 0:
        return cp.stdout.decode("utf-8", "replace")
    # stdout may hold a token: only stderr goes into the error.
    msg, hint = _cli_diagnostics(cp.stderr.decode("utf-8", "replace"))
    msg = msg or f"`kc-agent {args[0]}` exited {cp.returncode}"
    if cp.returncode == 4:
        raise LoginRequired(msg, hint=hint, code="login_required")
    if cp.returncode == 3:
        raise AgentUnavailable(msg, hint=hint or START_HINT, code="unreachable")
    raise KcAgentError(msg, hint=hint, code="usage" if cp.returncode == 2 else "cli_error")


def _cli_diagnostics(stderr: str) -> Tuple[str, str]:
    msg, hint = "", ""
    for line in stderr.splitlines():
        if line.startswith("kc-agent: error: ") and not msg:
            msg = line[len("kc-agent: error: "):].strip()
        elif line.startswith("kc-agent: hint: ") and not hint:
            hint = line[len("kc-agent: hint: "):].strip()
    return msg, hint


def _token_via_cli(name: str, scopes: List[str], min_valid: Optional[float], force: bool, na: _NoAgent) -> TokenInfo:
    args = ["token", "--format", "json", "--profile", name]
    if min_valid is not None:
        args += ["--min-valid", f"{int(min_valid)}s"]
    for s in scopes:
        args += ["--scope", s]
    if force:
        args.append("--force-refresh")
    out = _run_cli(args, na)
    try:
        doc = _loads_answer(out)
    except ValueError:
        raise KcAgentError("`kc-agent token --format json` printed something that is not JSON") from None
    if not isinstance(doc, dict):
        raise KcAgentError("`kc-agent token --format json` printed something that is not a JSON object")
    info = _token_info(doc, name)
    log.debug("token for profile %s from the kc-agent CLI, expires %s", name, info.expires_at.isoformat())
    return info


# --- routes -----------------------------------------------------------------


def fetch_routes() -> Dict[str, str]:
    """Route name -> local base URL, from the verified agent (or the CLI)."""
    try:
        _, doc = _request("GET", "/v1/proxy")
    except _NoAgent as na:
        return _routes_via_cli(na)
    if not doc.get("configured"):
        raise KcAgentError("the agent has no proxy: no routes are configured", hint="add routes to the kc-agent config file")
    if not doc.get("running"):
        raise KcAgentError(
            f"the agent's proxy is not running: {doc.get('error') or 'unknown reason'}",
            hint=str(doc.get("hint") or "see `kc-agent status` and `kc-agent doctor`"),
        )
    out = {}
    for r in doc.get("routes") or []:
        if isinstance(r, dict) and r.get("name") and r.get("url"):
            out[str(r["name"])] = str(r["url"])
    return out


def _env_name(route: str) -> str:
    return "".join(c if ("A" <= c <= "Z" or "0" <= c <= "9") else "_" for c in route.upper())


def _routes_via_cli(na: _NoAgent) -> Dict[str, str]:
    out = _run_cli(["env", "--shell", "sh"], na)
    routes = {}
    for line in out.splitlines():
        parts = shlex.split(line)
        if len(parts) == 2 and parts[0] == "export" and parts[1].startswith("KC_AGENT_URL_"):
            k, _, v = parts[1].partition("=")
            routes[k[len("KC_AGENT_URL_"):]] = v  # the env name: route_url matches on it
    return routes


def route_url(name: str) -> str:
    routes = fetch_routes()
    url = routes.get(name)
    if url is None:
        url = next((u for k, u in routes.items() if _env_name(k) == _env_name(name)), None)
    if not url:
        names = sorted(routes)
        raise KcAgentError(
            f"no route named {name!r}" + (f"; the agent has {', '.join(names)}" if names else "; the agent has no routes"),
            hint="add it under routes: in the kc-agent config file",
        )
    verify_listener(url)
    return url.rstrip("/")


def verify_listener(url: str) -> None:
    """On Linux, checks that the route's address is served by this user (the
    agent said so; a client trusts what it can check): another user who
    holds the port would receive the requests."""
    if not sys.platform.startswith("linux"):
        return
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    addrs = ["127.0.0.1", "::1"] if host.lower().rstrip(".") == "localhost" else [host]
    uid = None
    for a in addrs:
        uid = listener_uid(a, port)
        if uid is not None:
            break
    if uid is None:
        raise KcAgentError(f"nobody listens on the route address {host}:{port}", hint="the agent's proxy stopped; see `kc-agent status`")
    if uid != os.getuid():
        raise UntrustedAgent(
            f"the route address {host}:{port} is served by uid {uid}, not by you (uid {os.getuid()})",
            hint="another user holds the port: set proxy.listen to another port in your config (127.0.0.1:0 picks a free one)",
        )


def listener_uid(ip: str, port: int) -> Optional[int]:
    """The uid owning the TCP socket listening on ip:port (or on the wildcard
    address of that port), in either spelling of an IPv4 address and either
    table (_tcpowner); None when nobody does."""
    try:
        owner = _tcpowner.listener_owner((ip, port))
    except (ValueError, _tcpowner.Unsupported, _tcpowner.NoOwner):
        return None
    return owner if isinstance(owner, int) else None


def agent_socket() -> Optional[str]:
    """The socket path (on Windows, the pipe) where a verified agent
    answers, or None."""
    if not _discovery.can_connect():
        return None
    for i, p in enumerate(_discovery.candidates()):
        try:
            sock = _discovery.connect_verified(p, CONNECT_TIMEOUT)
        except _discovery.Unreachable:
            continue
        except UntrustedAgent:
            if i == 0:
                raise
            continue  # as get_token: a planted later place is skipped
        _exchange(sock, p, "GET", "/v1/health", None)
        return p
    return None
