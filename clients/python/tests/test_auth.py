"""KcAgentAuth with the real requests and httpx libraries, against a fake
agent and a local API that accepts only the token it is told to."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import kc_agent_client as kc
from kc_agent_client import _client

from conftest import FRESH, TOKEN


class API:
    """Answers 200 with what it saw when Authorization is "Bearer <accept>",
    else 401."""

    def __init__(self) -> None:
        self.accept = TOKEN
        self.seen = []  # (method, path, authorization, body)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Transfer-Encoding") == "chunked":
                    body = b""
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    body = self.rfile.read(n) if n else b""
                auth = self.headers.get("Authorization")
                api.seen.append((self.command, self.path, auth, body))
                ok = auth == f"Bearer {api.accept}"
                data = json.dumps({"ok": ok, "body": body.decode()}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if not ok:
                    self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api():
    a = API()
    yield a
    a.close()


def forced(agent):
    """Whether each token the auth asked the agent for (one proof request
    per request sent) was to be issued anew."""
    return [bool(r[3].get("force_refresh")) for r in agent.proof_requests()]


# --- requests -----------------------------------------------------------------

requests = pytest.importorskip("requests")


class _Checked:
    """requests.get & co., through kc.session(): a plain-http loopback
    request with KcAgentAuth needs a client that checks its connections."""

    def __getattr__(self, method):
        def call(*args, **kwargs):
            with kc.session() as s:
                return getattr(s, method)(*args, **kwargs)

        return call


checked = _Checked()


def test_requests_sets_authorization(agent, api):
    r = checked.get(api.url + "/tables", auth=kc.KcAgentAuth())
    assert r.status_code == 200
    assert api.seen == [("GET", "/tables", f"Bearer {TOKEN}", b"")]
    assert forced(agent) == [False]


def test_requests_retries_once_with_a_fresh_token(agent, api, tmp_path):
    api.accept = FRESH
    r = checked.post(api.url + "/upload", data=b"payload", auth=kc.KcAgentAuth())
    assert r.status_code == 200 and r.json()["body"] == "payload"
    assert [s[2] for s in api.seen] == [f"Bearer {TOKEN}", f"Bearer {FRESH}"]
    assert [s[3] for s in api.seen] == [b"payload", b"payload"]
    assert forced(agent) == [False, True]
    assert [h.status_code for h in r.history] == [401]
    # A file body is rewound for the retry.
    api.seen.clear()
    f = tmp_path / "body.txt"
    f.write_bytes(b"file body")
    with open(f, "rb") as fh:
        r = checked.put(api.url + "/file", data=fh, auth=kc.KcAgentAuth())
    assert r.status_code == 200 and [s[3] for s in api.seen] == [b"file body", b"file body"]


def test_requests_never_retries_a_redirect_with_a_token(agent):
    # A (a trusted API) redirects to B (another host) which answers 401:
    # B must never see a token, not even the forced fresh one.
    seen = []

    def server(host, handler_body):
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                seen.append((host, self.headers.get("Authorization")))
                handler_body(self)

        srv = ThreadingHTTPServer((host, 0), H)
        threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        return srv

    def deny(h):
        h.send_response(401)
        h.send_header("Content-Length", "0")
        h.end_headers()

    b = server("127.0.0.2", deny)
    target = f"http://127.0.0.2:{b.server_address[1]}/elsewhere"

    def redirect(h):
        h.send_response(302)
        h.send_header("Location", target)
        h.send_header("Content-Length", "0")
        h.end_headers()

    a = server("127.0.0.1", redirect)
    try:
        r = checked.get(f"http://127.0.0.1:{a.server_address[1]}/start", auth=kc.KcAgentAuth())
        assert r.status_code == 401
        assert [h for h, auth in seen if h == "127.0.0.2" and auth] == []
        assert forced(agent) == [False]
    finally:
        a.shutdown()
        b.shutdown()


def test_requests_gives_up_after_one_retry(agent, api):
    api.accept = "nothing"
    with kc.session() as s:
        s.auth = kc.KcAgentAuth(profile="p", scopes=["openid"], min_valid=10)
        r = s.get(api.url + "/denied")
    assert r.status_code == 401
    assert len(api.seen) == 2
    assert forced(agent) == [False, True]
    assert agent.proof_requests()[0][3] == {"profile": "p", "scopes": ["openid"], "min_valid": 10.0, "method": "GET", "url": api.url + "/denied"}


def test_requests_login_required_raises(agent, api):
    agent.token_answer = (401, {"error": "login_required", "message": "login gone", "hint": "kc-agent login"})
    with pytest.raises(kc.LoginRequired, match="login gone"):
        checked.get(api.url + "/x", auth=kc.KcAgentAuth())
    assert api.seen == []


def test_no_token_in_cleartext_across_a_network(agent):
    for url in ("http://api.example.com/x", "http://10.1.2.3/x"):
        with pytest.raises(kc.KcAgentError, match="refusing to send a token over plain http"):
            checked.get(url, auth=kc.KcAgentAuth())
    assert agent.requests == []


def test_auth_repr_has_no_token(agent, api):
    a = kc.KcAgentAuth()
    checked.get(api.url + "/", auth=a)
    assert TOKEN not in repr(a) and TOKEN not in str(vars(a))


# --- httpx --------------------------------------------------------------------------

httpx = pytest.importorskip("httpx")


def test_httpx_sync_retries_once_with_a_fresh_token(agent, api):
    api.accept = FRESH
    with kc.httpx_client(auth=kc.KcAgentAuth()) as c:
        r = c.post(api.url + "/q", json={"sql": "select 1"})
    assert r.status_code == 200 and json.loads(r.json()["body"]) == {"sql": "select 1"}
    assert [s[2] for s in api.seen] == [f"Bearer {TOKEN}", f"Bearer {FRESH}"]
    assert forced(agent) == [False, True]


def test_httpx_sync_gives_up_after_one_retry(agent, api):
    api.accept = "nothing"
    with kc.httpx_client() as c:
        r = c.get(api.url + "/denied")
    assert r.status_code == 401 and len(api.seen) == 2 and forced(agent) == [False, True]


def test_httpx_streamed_body_is_not_replayed(agent, api):
    api.accept = FRESH

    def gen():
        yield b"chunk"

    with kc.httpx_client(auth=kc.KcAgentAuth()) as c:
        r = c.post(api.url + "/stream", content=gen())
    assert r.status_code == 401 and len(api.seen) == 1 and forced(agent) == [False]


def test_httpx_async_retries_and_does_not_block_the_loop(agent, api):
    api.accept = FRESH
    agent.delay = 0.3  # each token call takes 0.3 s

    async def main():
        ticks = 0
        stop = False

        async def ticker():
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.01)

        t = asyncio.ensure_future(ticker())
        async with kc.httpx_client(asynchronous=True, auth=kc.KcAgentAuth()) as c:
            start = time.monotonic()
            r = await c.get(api.url + "/async")
            took = time.monotonic() - start
        stop = True
        await t
        return r, ticks, took

    r, ticks, took = asyncio.run(main())
    assert r.status_code == 200
    assert forced(agent) == [False, True]
    # 0.6 s of token calls: a blocked loop would tick once or twice.
    assert took >= 0.6 and ticks >= 20, (took, ticks)


def test_httpx_async_login_required(agent, api):
    agent.token_answer = (401, {"error": "login_required", "message": "login gone", "hint": "kc-agent login"})

    async def main():
        async with kc.httpx_client(asynchronous=True, auth=kc.KcAgentAuth()) as c:
            await c.get(api.url + "/x")

    with pytest.raises(kc.LoginRequired):
        asyncio.run(main())
    assert api.seen == []


def test_httpx_refuses_cleartext(agent):
    with pytest.raises(kc.KcAgentError, match="plain http"):
        httpx.get("http://api.example.com/x", auth=kc.KcAgentAuth())
    assert agent.requests == []


def test_plain_clients_get_no_token_for_cleartext_loopback(agent, api):
    # requests' and httpx's own pools never checked who is at the other
    # end: a token in the clear to loopback needs kc.session() or
    # kc.httpx_client(), and the refusal says so.
    with pytest.raises(kc.KcAgentError, match="not checked") as e:
        requests.get(api.url + "/x", auth=kc.KcAgentAuth())
    assert "kc_agent_client.session()" in e.value.hint
    with pytest.raises(kc.KcAgentError, match="not checked"):
        httpx.get(api.url + "/x", auth=kc.KcAgentAuth())
    assert api.seen == [] and agent.proof_requests() == [] and agent.token_requests() == []


def test_no_token_to_a_loopback_port_another_user_holds(agent, api, monkeypatch):
    # Every new connection of the checked clients is looked up; one that
    # another user's socket answers is closed before its first byte.
    from kc_agent_client import _tcpowner

    port = int(api.url.rsplit(":", 1)[1])
    with kc.session() as s:
        assert s.get(api.url + "/mine").status_code == 200  # ours: the token goes
    assert api.seen[-1][2] == f"Bearer {TOKEN}"
    real = _tcpowner.connection_owner
    monkeypatch.setattr(_tcpowner, "connection_owner", lambda local, remote: 65534 if local[1] == port else real(local, remote))
    n = len(api.seen)
    with pytest.raises(kc.UntrustedAgent, match="served by uid 65534"):
        kc.session().get(api.url + "/theirs")
    with pytest.raises(kc.UntrustedAgent, match="served by uid 65534"):
        with kc.httpx_client() as c:
            c.get(api.url + "/theirs")

    async def main():
        async with kc.httpx_client(asynchronous=True) as c:
            await c.get(api.url + "/theirs")

    with pytest.raises(kc.UntrustedAgent, match="served by uid 65534"):
        asyncio.run(main())
    assert len(api.seen) == n, "a request reached the other user's port"
