"""KcAgentAuth and redirects. A DPoP proof is made for one request (its
method and URL), a redirect's request is another, and neither library asks
the auth again for it: so a redirect's request goes without the proof and
the DPoP token (same origin or not), and a nonce is kept only for the
server that sent it. With any token, a redirect's answer is never a reason
to send the first request again (its server handled it)."""

from __future__ import annotations

import asyncio
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import kc_agent_client as kc
from kc_agent_client import _connguard, _nonce

from conftest import TOKEN
from test_dpop import asked, dagent  # noqa: F401 (fixtures)

requests = pytest.importorskip("requests")
httpx = pytest.importorskip("httpx")

CHALLENGE = {"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": "nonce-of-b"}


class Server:
    """Answers each request with answer(method, path) -> (status, headers);
    records what came."""

    def __init__(self, answer) -> None:
        self.seen = []  # (method, path, Authorization, DPoP, body)
        srv = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                srv.seen.append((self.command, self.path, self.headers.get("Authorization"), self.headers.get("DPoP"), body))
                status, headers = answer(self.command, self.path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def proofs(self):
        return [proof for _, _, _, proof, _ in self.seen if proof]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def b():
    """Another origin, a DPoP API that challenges every request."""
    s = Server(lambda m, p: (401, CHALLENGE))
    yield s
    s.close()


@pytest.fixture
def a(b):
    """The first origin: redirects to b (307, handing out its own nonce)."""
    s = Server(lambda m, p: (307, {"Location": b.url + "/elsewhere", "DPoP-Nonce": "nonce-of-a"}))
    yield s
    s.close()


@pytest.fixture
def same():
    """Redirects /jobs to /jobs/ on the same origin, which is a DPoP API
    that challenges every request."""
    s = Server(lambda m, p: (307, {"Location": "/jobs/"}) if p == "/jobs" else (401, CHALLENGE))
    yield s
    s.close()


def _no_token_or_proof(server):
    return [(m, p) for m, p, auth, proof, _ in server.seen if proof or (auth and TOKEN in auth)]


def test_httpx_after_a_cross_origin_redirect(dagent, a, b):  # noqa: F811
    # The 401 is the redirect target's: its nonce is not the first origin's,
    # the first origin (which handled the POST and answered 307) does not
    # get it again, and the target gets neither token nor proof.
    _nonce.forget_all()
    with kc.httpx_client(follow_redirects=True) as c:
        r = c.post(a.url + "/jobs", content=b"launch")
    assert r.status_code == 401 and [h.status_code for h in r.history] == [307]
    assert _nonce.get(a.url + "/") == "nonce-of-a"  # a's own nonce, from its 307
    assert len(a.seen) == 1 and a.seen[0][4] == b"launch"
    assert b.proofs() == [] and _no_token_or_proof(b) == []
    assert asked(dagent) == [("POST", a.url + "/jobs", "", False)]


def test_httpx_async_after_a_cross_origin_redirect(dagent, a, b):  # noqa: F811
    _nonce.forget_all()

    async def main():
        async with kc.httpx_client(asynchronous=True, follow_redirects=True) as c:
            return await c.post(a.url + "/jobs", content=b"launch")

    assert asyncio.run(main()).status_code == 401
    assert _nonce.get(a.url + "/") == "nonce-of-a"
    assert len(a.seen) == 1 and _no_token_or_proof(b) == []
    assert len(asked(dagent)) == 1


def test_httpx_never_resends_after_a_redirect_with_a_bearer_token(agent, a, b):
    # requests has never done it (test_auth); httpx did, with a fresh token.
    with kc.httpx_client(follow_redirects=True) as c:
        assert c.post(a.url + "/jobs", content=b"launch").status_code == 401
    assert len(a.seen) == 1 and [auth for _, _, auth, _, _ in b.seen] == [None]
    assert asked(agent) == [("POST", a.url + "/jobs", "", False)]


def test_requests_sends_no_proof_to_a_redirect_target(dagent, a, b):  # noqa: F811
    # requests strips Authorization across origins (rebuild_auth), not DPoP.
    _nonce.forget_all()
    with kc.session() as s:
        r = s.post(a.url + "/jobs", data=b"launch")
    assert r.status_code == 401
    assert _no_token_or_proof(b) == [] and len(a.seen) == 1
    assert _nonce.get(a.url + "/") == "nonce-of-a" and len(asked(dagent)) == 1


def test_requests_without_a_session_sends_no_proof_to_a_redirect_target(dagent, a, b):  # noqa: F811
    # requests.post(..., auth=KcAgentAuth()): the auth's own hook does it.
    with _connguard.checked_client():  # plain-http loopback: as a checking client would
        r = requests.post(a.url + "/jobs", data=b"launch", auth=kc.KcAgentAuth())
    assert r.status_code == 401 and _no_token_or_proof(b) == [] and len(a.seen) == 1


@pytest.mark.parametrize("lib", ["requests", "httpx"])
def test_a_same_origin_redirect_goes_without_token_and_proof(dagent, same, lib):  # noqa: F811
    # The proof names /jobs; the redirect's request (to /jobs/) gets neither
    # it nor the token, and its 401 comes back as is: nothing sent twice.
    if lib == "requests":
        with kc.session() as s:
            r = s.post(same.url + "/jobs", data=b"launch")
    else:
        with kc.httpx_client(follow_redirects=True) as c:
            r = c.post(same.url + "/jobs", content=b"launch")
    assert r.status_code == 401
    assert [(m, p) for m, p, *_ in same.seen] == [("POST", "/jobs"), ("POST", "/jobs/")]
    assert same.seen[0][2] == f"DPoP {TOKEN}" and same.seen[0][3]
    assert same.seen[1][2] is None and same.seen[1][3] is None
    assert len(asked(dagent)) == 1


@pytest.mark.parametrize("lib", ["requests", "httpx"])
def test_a_retry_answered_by_a_redirect_sends_no_proof_there(dagent, b, lib):  # noqa: F811
    # First a nonce challenge, then the retry is answered 307: the
    # redirect's request is built from the first request's headers.
    answers = iter([(401, {**CHALLENGE, "DPoP-Nonce": "nonce-of-first"})])
    first = Server(lambda m, p: next(answers, (307, {"Location": b.url + "/elsewhere"})))
    try:
        if lib == "requests":
            with kc.session() as s:
                r = s.post(first.url + "/jobs", data=b"launch")
        else:
            with kc.httpx_client(follow_redirects=True) as c:
                r = c.post(first.url + "/jobs", content=b"launch")
    finally:
        first.close()
    assert r.status_code == 401 and len(first.seen) == 2
    assert [n for _, _, n, _ in asked(dagent)] == ["", "nonce-of-first"]
    assert _no_token_or_proof(b) == []


def test_bearer_follows_a_same_origin_redirect_as_before(agent):
    # A Bearer token is left to the libraries' rules: same origin, kept.
    s1 = Server(lambda m, p: (307, {"Location": "/to/"}) if p == "/to" else (200, {}))
    try:
        with kc.session() as s:
            assert s.get(s1.url + "/to").status_code == 200
        with kc.httpx_client(follow_redirects=True) as c:
            assert c.get(s1.url + "/to").status_code == 200
    finally:
        s1.close()
    assert [auth for *_, auth, _, _ in s1.seen] == [f"Bearer {TOKEN}"] * 4


def test_httpx_client_of_ones_own_warns_and_never_resends(dagent, a, b, caplog):  # noqa: F811
    # A plain httpx.Client has no hook that drops the proof from a
    # redirect's request: the auth flow says so, in a line without
    # token or proof, and still neither re-sends nor mixes up nonces.
    _nonce.forget_all()
    caplog.set_level(logging.WARNING, logger="kc_agent_client")
    with _connguard.checked_client(), httpx.Client(auth=kc.KcAgentAuth(), follow_redirects=True) as c:
        r = c.post(a.url + "/jobs", content=b"launch")
    assert r.status_code == 401 and len(a.seen) == 1
    assert _nonce.get(a.url + "/") == "nonce-of-a" and _nonce.get(b.url + "/") == "nonce-of-b"
    warned = [rec.getMessage() for rec in caplog.records]
    assert len(warned) == 1 and "kc_agent_client.httpx_client()" in warned[0] and b.url.split("//")[1] in warned[0]
    assert not any(s in warned[0] for s in [TOKEN] + dagent.proofs)


def test_httpx_client_keeps_the_callers_request_hooks(dagent, same):  # noqa: F811
    seen = []
    with kc.httpx_client(follow_redirects=True, event_hooks={"request": [lambda r: seen.append(r.url.path)]}) as c:
        c.get(same.url + "/jobs")
    assert seen == ["/jobs", "/jobs/"] and same.seen[1][3] is None
