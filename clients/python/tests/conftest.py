"""A fake kc-agent for the unit tests: the real protocol (HTTP/1.1 + JSON)
on a real Unix socket in a private directory, recording what it receives;
and a fake `kc-agent` command for the CLI fallback."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socketserver
import stat
import sys
import tempfile
import textwrap
import threading
from http.server import BaseHTTPRequestHandler

import pytest

from kc_agent_client import _cli, _nonce

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbmEifQ.c2lnbmF0dXJlLW9uZQ"
FRESH = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbmEiLCJuIjoyfQ.c2lnbmF0dXJlLXR3bw"


class FakeAgent:
    """Answers /v1/token, /v1/proxy and /v1/health like the agent. Tests set
    ``token_answer``/``proxy_answer`` (status, body) or ``on_token``."""

    def __init__(self, sock_path: str) -> None:
        self.path = sock_path
        self.requests = []  # (method, path, headers dict, body dict or None)
        self.token_answer = (200, {"access_token": TOKEN, "token_type": "Bearer", "expires_at": "2030-01-02T03:04:05Z", "expires_in": 300})
        self.fresh_answer = (200, {"access_token": FRESH, "token_type": "Bearer", "expires_at": "2030-01-02T03:09:05Z", "expires_in": 600})
        self.proxy_answer = (200, {"configured": False, "running": False, "routes": []})
        self.delay = 0.0
        # /v1/proof: answered from token_answer/fresh_answer; with dpop,
        # as a DPoP-bound token with a fake proof (fake_proof) per request.
        # proof_endpoint=False: an older agent, which answers 404 old_code.
        self.dpop = False
        self.proof_endpoint = True
        self.old_code = "no_such_endpoint"
        self.proofs = []  # the proofs answered, in order
        self.connections = 0
        # (method, path prefix) -> function(path, body) -> (status, doc)
        self.handlers = {}
        agent = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def setup(self):
                agent.connections += 1
                super().setup()

            def _answer(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else None
                agent.requests.append((self.command, self.path, dict(self.headers), body))
                return body

            def do_POST(self):
                body = self._record()
                if agent.delay:
                    import time

                    time.sleep(agent.delay)
                h = agent.handler("POST", self.path)
                if h is not None:
                    self._answer(*h(self.path, body))
                elif self.path == "/v1/token":
                    if body and body.get("force_refresh"):
                        self._answer(*agent.fresh_answer)
                    else:
                        self._answer(*agent.token_answer)
                elif self.path == "/v1/proof" and agent.proof_endpoint:
                    self._answer(*agent.proof(body or {}))
                elif self.path == "/v1/proof" and agent.old_code:
                    self._answer(404, {"error": agent.old_code, "message": "no such endpoint"})
                else:
                    self._answer(404, {"error": "bad_request", "message": "no such endpoint"})

            def do_DELETE(self):
                self._record()
                h = agent.handler("DELETE", self.path)
                if h is not None:
                    self._answer(*h(self.path, None))
                else:
                    self._answer(404, {"error": "bad_request", "message": "no such endpoint"})

            def do_GET(self):
                self._record()
                h = agent.handler("GET", self.path)
                if h is not None:
                    self._answer(*h(self.path, None))
                elif self.path == "/v1/proxy":
                    self._answer(*agent.proxy_answer)
                elif self.path == "/v1/health":
                    self._answer(200, {"ok": True})
                else:
                    self._answer(404, {"error": "bad_request", "message": "no such endpoint"})

        self.Handler = Handler  # serves one connection of any kind (the fake Windows pipe)

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # A client that went away mid-answer (an interrupted login())
                # is expected; anything else is printed as usual.
                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)

        self.server = Server(sock_path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def handler(self, method, path):
        for (m, prefix), h in self.handlers.items():
            if m == method and path.startswith(prefix):
                return h
        return None

    def token_requests(self):
        return [r for r in self.requests if r[1] == "/v1/token"]

    def proof_requests(self):
        return [r for r in self.requests if r[1] == "/v1/proof"]

    def proof(self, body):
        status, doc = self.fresh_answer if body.get("force_refresh") else self.token_answer
        doc = dict(doc)
        if status == 200 and self.dpop:
            doc["token_type"] = "DPoP"
            doc["proof"] = fake_proof(body, len(self.proofs))
            self.proofs.append(doc["proof"])
        return status, doc

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _b64(doc) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")


def fake_proof(body, n) -> str:
    """A proof-shaped JWT whose payload says what it was signed for (the
    fake API reads it back): htm, htu, nonce and a jti unique per proof."""
    claims = {"htm": body.get("method"), "htu": body.get("url"), "jti": f"jti-{n}", "profile": body.get("profile")}
    if body.get("nonce"):
        claims["nonce"] = body["nonce"]
    return f"{_b64({'typ': 'dpop+jwt', 'alg': 'ES256'})}.{_b64(claims)}.c2lnbmVk"


def proof_claims(proof: str) -> dict:
    part = proof.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def private_dir() -> str:
    # Short: Unix socket paths are limited to ~100 bytes. mkdtemp is 0700.
    return tempfile.mkdtemp(prefix="kcpy", dir="/tmp")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test ever reaches a real agent or a real kc-agent binary: the
    socket path points at an empty private directory, PATH holds only a
    directory for the fake CLI plus the system's, HOME is empty."""
    d = private_dir()
    monkeypatch.setenv("KC_AGENT_SOCK", os.path.join(d, "none", "agent.sock"))
    monkeypatch.delenv("KC_AGENT_PROFILE", raising=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(_cli, "CLI_LOCATIONS", ())
    _nonce.forget_all()  # the nonces servers sent earlier tests
    yield bindir
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def agent(monkeypatch):
    d = private_dir()
    os.chmod(d, 0o700)
    p = os.path.join(d, "agent.sock")
    a = FakeAgent(p)
    monkeypatch.setenv("KC_AGENT_SOCK", p)
    yield a
    a.close()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def fake_cli(isolated, tmp_path):
    """Installs a fake `kc-agent` on PATH. It records its argv (one JSON
    line per call) and answers as configured with configure(exit, stdout,
    stderr)."""
    bindir = isolated
    log = tmp_path / "cli-calls.jsonl"
    conf = tmp_path / "cli-conf.json"

    class Cli:
        def configure(self, code=0, stdout="", stderr=""):
            conf.write_text(json.dumps({"code": code, "stdout": stdout, "stderr": stderr}))

        def calls(self):
            if not log.exists():
                return []
            return [json.loads(line) for line in log.read_text().splitlines()]

    script = bindir / "kc-agent"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import json, sys
            with open({str(log)!r}, "a") as f:
                f.write(json.dumps(sys.argv[1:]) + "\\n")
            c = json.load(open({str(conf)!r}))
            sys.stdout.write(c["stdout"]); sys.stderr.write(c["stderr"])
            sys.exit(c["code"])
            """
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    cli = Cli()
    cli.configure(0, json.dumps({"access_token": TOKEN, "token_type": "Bearer", "expires_at": "2030-01-02T03:04:05Z", "expires_in": 300}) + "\n")
    return cli
