"""The transport's own rules: a request in one write, answers read by
http.client (chunked ones too), the key fold's ASCII shortcut, and an agent
without an endpoint (NoEndpoint, and its version named when it differs)."""

from __future__ import annotations

import json

import pytest

import kc_agent_client as kc
from kc_agent_client import _answer, _transport

from conftest import TOKEN


def test_the_ascii_fold_is_the_general_one():
    # fold() takes a shortcut for ASCII keys (every answer's every key goes
    # through it); it must give what the character-by-character rule gives.
    general = lambda k: "".join(_answer._fold_char(c) for c in k)  # noqa: E731
    for k in [chr(i) for i in range(128)] + sorted(_answer.ANSWER_KEYS) + ["Access_Token", "x-Y_z 0~"]:
        assert _answer.fold(k) == general(k), repr(k)


class _ScriptedSocket:
    """A connected socket whose peer answered ``answer``; records writes."""

    def __init__(self, answer: bytes) -> None:
        self.writes = []
        self._answer = answer

    def settimeout(self, t):
        pass

    def sendall(self, data):
        self.writes.append(bytes(data))

    def recv_into(self, buf):
        n = min(len(buf), len(self._answer))
        buf[:n], self._answer = self._answer[:n], self._answer[n:]
        return n

    def close(self):
        pass


def test_a_request_goes_in_one_write_and_chunked_answers_are_read():
    # Head and body in one write (two would wake the agent twice); the
    # answer may come chunked, as Go sends one over 2 KB.
    body = json.dumps({"access_token": TOKEN, "token_type": "Bearer", "pad": "x" * 3000}).encode()
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer += b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (100, body[:100], len(body) - 100, body[100:])
    s = _ScriptedSocket(answer)
    status, doc = _transport._exchange(s, "/x/agent.sock", "POST", "/v1/token", {"profile": "p"})
    assert status == 200 and doc["access_token"] == TOKEN
    (req,) = s.writes
    head, _, sent = req.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"POST /v1/token HTTP/1.1" and b"Host: kc-agent.sock" in head
    assert json.loads(sent) == {"profile": "p"} and f"Content-Length: {len(sent)}".encode() in head
    s = _ScriptedSocket(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    assert _transport._exchange(s, "/x/agent.sock", "GET", "/v1/health", None) == (200, {})
    assert s.writes == [b"GET /v1/health HTTP/1.1\r\nHost: kc-agent.sock\r\nAccept-Encoding: identity\r\n\r\n"]
    for bad in ("/v1/login/a b", "/v1/x\r\nX: y", "v1/token"):
        s = _ScriptedSocket(b"")
        with pytest.raises(kc.KcAgentError, match="refusing to ask the agent"):
            _transport._exchange(s, "/x/agent.sock", "GET", bad, None)
        assert s.writes == []



@pytest.mark.parametrize("code", ["no_such_endpoint", "bad_request"])
def test_an_agent_without_the_endpoint(agent, code):
    # Today's agents say no_such_endpoint, older ones bad_request: either
    # is NoEndpoint; with another version in /v1/health it names both
    # versions (code agent_too_old), as the Go client does (ipc.Skew).
    agent.handlers[("POST", "/v1/new")] = lambda p, b: (404, {"error": code, "message": "no such endpoint"})
    with pytest.raises(_transport.NoEndpoint) as e:
        _transport.request("POST", "/v1/new", {})
    assert e.value.code == code
    agent.handlers[("GET", "/v1/health")] = lambda p, b: (200, {"ok": True, "version": "0.5.0"})
    with pytest.raises(_transport.NoEndpoint) as e:
        _transport.request("POST", "/v1/new", {})
    assert e.value.code == "agent_too_old" and "kc-agent 0.5.0" in e.value.message
    n = len(agent.requests)
    with pytest.raises(_transport.NoEndpoint) as e:
        _transport.request("POST", "/v1/new", {}, skew=False)
    assert e.value.code == code and len(agent.requests) == n + 1  # no /v1/health
    assert isinstance(e.value, kc.KcAgentError)
