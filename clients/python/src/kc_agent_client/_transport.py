"""Talking to the agent: HTTP/1.1 with JSON over its Unix socket (on
Windows, its named pipe), a new verified connection per call (safe in
forked kernels), the first verified agent in discovery order. ``request``
is what the rest of the package calls; NoAgent says no agent answered, and
the caller may then ask the kc-agent CLI (_cli)."""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import time
from typing import Optional, Sequence, Tuple

from . import _discovery
from ._answer import api_error, loads_answer
from ._errors import START_HINT, AgentUnavailable, KcAgentError, UntrustedAgent

HOST = "kc-agent.sock"  # the agent accepts no other Host
CONNECT_TIMEOUT = 2.0
# The agent gives up on Keycloak after 40 s; wait a little longer than that.
# One deadline for the whole exchange (request, wait, answer), not for each
# read: an agent dripping a byte at a time must not hold a caller forever.
REQUEST_TIMEOUT = 50.0
MAX_ANSWER = 4 << 20
# What the agent's catch-all answers for a path it has no handler for
# (ipc.NoSuchEndpoint): no_such_endpoint, or bad_request before that code.
NO_ENDPOINT_CODES = ("no_such_endpoint", "bad_request")


class NoEndpoint(KcAgentError):
    """The agent has no handler for the path: an agent older than this
    client (404 no_such_endpoint; agents before that code said 404
    bad_request). A caller with another way (the proof endpoint's caller
    falls back to /v1/token) catches this; others see a KcAgentError."""


class NoAgent(Exception):
    """No agent answered at any candidate; the CLI may still reach one."""

    def __init__(self, paths: Sequence[str], why: str) -> None:
        super().__init__(why)
        self.paths = list(paths)
        self.why = why


def request(method: str, path: str, body: Optional[dict] = None, *, skew: bool = True) -> Tuple[int, dict]:
    """Sends one request to the first verified agent that answers, in
    discovery order. Raises NoAgent when none does, UntrustedAgent when the
    first candidate (where this user's agent belongs) is someone else's. A
    later candidate someone else planted is never contacted, as in the Go
    CLI (ipc.clientFor). An agent without the endpoint raises NoEndpoint;
    with skew, one whose /v1/health names another version raises it with
    code agent_too_old and both versions (a caller with a fallback passes
    skew=False and saves that round trip)."""
    if not _discovery.can_connect():
        raise NoAgent([], "this Python has no Unix sockets")
    paths = _discovery.candidates()
    if not paths:
        raise NoAgent([], "no place for the agent's socket (set KC_AGENT_SOCK)")
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
        return _exchange(sock, p, method, path, body, skew)
    raise NoAgent(paths, why)


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


_PATH = re.compile(r"/[\x21-\x7e]*")


def _request_bytes(method: str, path: str, body: Optional[dict]) -> bytes:
    """The whole request, for one write: a request whose head and body
    came in two writes would wake the agent twice (http.client writes
    them apart), which a loaded machine makes a good part of a call's
    time. path is the package's own, checked all the same."""
    if not _PATH.fullmatch(path):
        raise KcAgentError(f"internal: refusing to ask the agent for a path with spaces or control characters ({len(path)} characters)")
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept-Encoding: identity\r\n"
    if body is None:
        return (head + "\r\n").encode("ascii")
    data = json.dumps(body).encode()
    head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    return head.encode("ascii") + data


def _exchange(sock, sock_path: str, method: str, path: str, body: Optional[dict], skew: bool = True) -> Tuple[int, dict]:
    # Already connected and verified: the request goes in one write, and
    # http.client reads the answer (status, headers, length or chunks).
    conn = _DeadlineSocket(sock, REQUEST_TIMEOUT)
    resp = None
    try:
        request_bytes = _request_bytes(method, path, body)
        conn.sendall(request_bytes)
        resp = http.client.HTTPResponse(conn, method=method)  # type: ignore[arg-type]
        resp.begin()
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
        if resp is not None:
            resp.close()
        conn.close()
    try:
        doc = loads_answer(raw) if raw else {}
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        if status >= 300:
            raise KcAgentError(f"the agent answered HTTP {status}", code="internal")
        raise KcAgentError("the agent's answer is not a JSON object")
    if status == 404 and doc.get("error") in NO_ENDPOINT_CODES:
        # Only the agent's catch-all answers so (an endpoint's own "not
        # found" is not_found); the message is prose, never matched.
        older = _older_agent(sock_path, method, path) if skew else None
        if older is not None:
            raise older
        e = api_error(status, doc)
        raise NoEndpoint(e.message, hint=e.hint, code=e.code)
    if status >= 300:
        raise api_error(status, doc)
    return status, doc


def _older_agent(sock_path: str, method: str, path: str) -> Optional[NoEndpoint]:
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
    return NoEndpoint(
        f"the agent at {sock_path} (kc-agent {agent}) does not know {method} {path}: it is older than this client (kc-agent-client {__version__})",
        hint="restart the agent so that the newer kc-agent runs: `kc-agent service restart`, or stop it (the client starts its own kc-agent)",
        code="agent_too_old",
    )



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
