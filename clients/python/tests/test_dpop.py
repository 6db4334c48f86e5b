"""KcAgentAuth with DPoP-bound tokens (dpop: on): a proof from the agent
per request, the server's nonce challenge answered once, nonces kept per
origin, Bearer where the agent serves Bearer or is older than /v1/proof.
Against the fake agent (conftest) and a local API that checks what a DPoP
resource server checks of the fake proofs: htm, htu, jti replay, nonce."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import kc_agent_client as kc
from kc_agent_client import _nonce

from conftest import FRESH, TOKEN, proof_claims

requests = pytest.importorskip("requests")
httpx = pytest.importorskip("httpx")


class DPoPAPI:
    """Answers 200 to ``Authorization: DPoP <accept>`` with a proof made
    for this very request (method, full URL), never seen before, and
    carrying ``nonce`` when one is set; otherwise 401, a nonce challenge
    when only the nonce is wrong. ``bearer=True``: accepts only
    ``Bearer <accept>`` and no proof. ``rotate``: every answer hands out a
    new nonce. ``challenge_always``: every request meets a new challenge."""

    def __init__(self) -> None:
        self.accept = TOKEN
        self.nonce = ""
        self.bearer = False
        self.rotate = False
        self.challenge_always = False
        self.jtis = set()
        self.seen = []  # (method, path, authorization, proof claims or None, body)
        self.issued = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                status, extra = api.judge(self, body)
                data = json.dumps({"ok": status == 200, "body": body.decode()}).encode()
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def new_nonce(self) -> str:
        self.issued += 1
        self.nonce = f"nonce-{self.issued}"
        return self.nonce

    def judge(self, h, body):
        auth = h.headers.get("Authorization")
        proof = h.headers.get("DPoP")
        claims = proof_claims(proof) if proof else None
        self.seen.append((h.command, h.path, auth, claims, body))
        if self.bearer:
            return (200 if auth == f"Bearer {self.accept}" and proof is None else 401), {}
        deny = {"WWW-Authenticate": 'DPoP error="invalid_token"'}
        if auth != f"DPoP {self.accept}" or claims is None:
            return 401, deny
        if claims["htm"] != h.command or claims["htu"] != self.url + h.path or claims["jti"] in self.jtis:
            return 401, deny
        self.jtis.add(claims["jti"])
        if self.challenge_always or (self.nonce and claims.get("nonce") != self.nonce):
            return 401, {"WWW-Authenticate": 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"', "DPoP-Nonce": self.new_nonce()}
        return 200, ({"DPoP-Nonce": self.new_nonce()} if self.rotate else {})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api():
    a = DPoPAPI()
    yield a
    a.close()


@pytest.fixture
def dagent(agent):
    agent.dpop = True
    return agent


def asked(agent):
    """What each proof request asked for: (method, url, nonce, force)."""
    return [(b["method"], b["url"], b.get("nonce", ""), bool(b.get("force_refresh"))) for _, _, _, b in agent.proof_requests()]


def leaks(text, agent):
    return [s for s in [TOKEN, FRESH] + agent.proofs if s in text]


# --- per-request proofs --------------------------------------------------------------


def test_requests_sends_a_fresh_proof_per_request(dagent, api):
    with kc.session() as s:
        r1 = s.get(api.url + "/tables?limit=5")
        r2 = s.post(api.url + "/query", json={"sql": "select 1"})
    assert (r1.status_code, r2.status_code) == (200, 200)
    assert asked(dagent) == [("GET", api.url + "/tables?limit=5", "", False), ("POST", api.url + "/query", "", False)]
    assert [a for _, _, a, _, _ in api.seen] == [f"DPoP {TOKEN}"] * 2
    assert [c["jti"] for _, _, _, c, _ in api.seen] == ["jti-0", "jti-1"]  # the agent's two proofs, none reused


def test_httpx_sends_a_fresh_proof_per_request(dagent, api):
    with kc.httpx_client() as c:
        assert c.get(api.url + "/a").status_code == 200
        assert c.put(api.url + "/b", content=b"x").status_code == 200
    assert asked(dagent) == [("GET", api.url + "/a", "", False), ("PUT", api.url + "/b", "", False)]


def test_bearer_answer_sends_bearer_and_no_proof(agent, api):
    api.bearer = True
    with kc.session() as s:
        assert s.get(api.url + "/plain").status_code == 200
    with kc.httpx_client() as c:
        assert c.get(api.url + "/plain").status_code == 200
    assert [(a, c) for _, _, a, c, _ in api.seen] == [(f"Bearer {TOKEN}", None)] * 2
    assert len(agent.proof_requests()) == 2 and agent.token_requests() == []


# --- nonces ----------------------------------------------------------------------------


def test_requests_answers_a_nonce_challenge_once_with_the_body(dagent, api):
    api.nonce = "n-0"
    with kc.session() as s:
        r = s.post(api.url + "/upload", data=b"payload")
    assert r.status_code == 200 and r.json()["body"] == "payload"
    assert [h.status_code for h in r.history] == [401]
    # The retry carries the challenge's nonce; the token is not refreshed.
    assert asked(dagent) == [("POST", api.url + "/upload", "", False), ("POST", api.url + "/upload", "nonce-1", False)]
    assert [b for *_, b in api.seen] == [b"payload", b"payload"]


def test_a_nonce_challenge_is_answered_only_once(dagent, api):
    api.challenge_always = True
    with kc.session() as s:
        r = s.get(api.url + "/x")
    assert r.status_code == 401 and r.headers["DPoP-Nonce"] == "nonce-2"
    assert len(api.seen) == 2 and [n for _, _, n, _ in asked(dagent)] == ["", "nonce-1"]
    api.seen.clear()
    with kc.httpx_client() as c:
        assert c.get(api.url + "/x").status_code == 401
    assert len(api.seen) == 2


def test_the_last_nonce_is_kept_per_origin(dagent, api):
    api.nonce = "n-0"
    with kc.session() as s:
        assert s.get(api.url + "/first").status_code == 200  # challenged once: nonce-1
    api.rotate = True
    # Another auth object, another client: the origin's nonce goes in at once.
    with kc.httpx_client() as c:
        assert c.get(api.url + "/second").status_code == 200  # the answer hands out nonce-2
    with kc.session() as s:
        assert s.get(api.url + "/third").status_code == 200
    assert [n for _, _, n, _ in asked(dagent)] == ["", "nonce-1", "nonce-1", "nonce-2"]
    assert len(api.seen) == 4
    # Another origin (another port) gets none of it.
    assert _nonce.get(api.url.replace("127.0.0.1", "localhost") + "/") == ""
    assert _nonce.get(api.url + "/anything?q") == "nonce-3"


def test_a_401_that_is_not_a_nonce_challenge_refreshes_the_token(dagent, api):
    api.accept = FRESH
    with kc.session() as s:
        r = s.get(api.url + "/t")
    assert r.status_code == 200
    assert asked(dagent) == [("GET", api.url + "/t", "", False), ("GET", api.url + "/t", "", True)]
    assert [a for _, _, a, _, _ in api.seen] == [f"DPoP {TOKEN}", f"DPoP {FRESH}"]


def test_httpx_sync_answers_a_nonce_challenge(dagent, api):
    api.nonce = "n-0"
    with kc.httpx_client() as c:
        r = c.post(api.url + "/q", json={"a": 1})
    assert r.status_code == 200 and json.loads(r.json()["body"]) == {"a": 1}
    assert [n for _, _, n, f in asked(dagent)] == ["", "nonce-1"]


def test_httpx_async_answers_a_nonce_challenge(dagent, api):
    api.nonce = "n-0"

    async def main():
        async with kc.httpx_client(asynchronous=True) as c:
            return await c.get(api.url + "/async")

    assert asyncio.run(main()).status_code == 200
    assert asked(dagent) == [("GET", api.url + "/async", "", False), ("GET", api.url + "/async", "nonce-1", False)]


def test_httpx_streamed_body_is_not_resent_on_a_challenge(dagent, api):
    api.nonce = "n-0"

    def gen():
        yield b"chunk"

    with kc.httpx_client() as c:
        r = c.post(api.url + "/stream", content=gen(), headers={"Content-Length": "5"})
    assert r.status_code == 401 and len(api.seen) == 1
    assert _nonce.get(api.url) == "nonce-1"  # kept for the next request all the same


def test_nonce_rules():
    assert _nonce.challenge(401, {"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": "abc"}) == "abc"
    assert _nonce.challenge(401, {"WWW-Authenticate": 'DPoP error="invalid_token"', "DPoP-Nonce": "abc"}) == ""
    assert _nonce.challenge(400, {"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": "abc"}) == ""
    assert _nonce.challenge(401, {"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": 'a "b'}) == ""
    assert not _nonce.remember("https://x/", "line\nbreak") and not _nonce.remember("https://x/", "x" * 2000)
    assert _nonce.origin("HTTPS://API.example/a?b") == _nonce.origin("https://api.example:443/c") == "https://api.example:443"
    for i in range(_nonce.MAX_ORIGINS + 5):
        _nonce.remember(f"https://h{i}.example/", "n")
    assert _nonce.get("https://h0.example/") == "" and _nonce.get(f"https://h{_nonce.MAX_ORIGINS + 4}.example/") == "n"
