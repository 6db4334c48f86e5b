from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone

import pytest

import kc_agent_client as kc
from kc_agent_client import _answer, _cli, _discovery, _transport

from conftest import FRESH, REPO, TOKEN, FakeAgent, private_dir


# --- discovery ----------------------------------------------------------------


def load_vectors():
    with open(os.path.join(REPO, "ipc", "discovery", "testdata", "discovery.json")) as f:
        return json.load(f)["cases"]


@pytest.mark.parametrize("case", load_vectors(), ids=lambda c: c["name"])
def test_discovery_vectors(case):
    # The same vectors as the Go CLI (ipc/paths_test.go).
    assert _discovery.candidates_for(case["env"]) == case["want"]


def test_discovery_ignores_xdg_runtime_dir_and_tmpdir(monkeypatch):
    monkeypatch.delenv("KC_AGENT_SOCK")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/tmp/elsewhere")
    monkeypatch.setenv("TMPDIR", "/var/tmp/x")
    got = _discovery.candidates()
    assert got[-1] == f"/tmp/kc-agent-{os.getuid()}/agent.sock"
    assert all("elsewhere" not in p and "/var/tmp" not in p for p in got)
    st = os.stat(f"/run/user/{os.getuid()}") if os.path.isdir(f"/run/user/{os.getuid()}") else None
    if st is not None and st.st_uid == os.getuid():
        assert got[0] == f"/run/user/{os.getuid()}/kc-agent/agent.sock"
    else:
        assert len(got) == 1


def test_kc_agent_sock_relative_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KC_AGENT_SOCK", "s/agent.sock")
    assert _discovery.candidates() == [str(tmp_path / "s" / "agent.sock")]


def test_probes_in_order_and_first_answer_wins(monkeypatch, fake_cli):
    d1, d2 = private_dir(), private_dir()
    missing = os.path.join(d1, "agent.sock")  # a private dir, nobody listening
    second = FakeAgent(os.path.join(d2, "agent.sock"))
    d3 = private_dir()
    third = FakeAgent(os.path.join(d3, "agent.sock"))
    try:
        monkeypatch.setattr(_discovery, "candidates", lambda: [os.path.join(d1, "gone", "agent.sock"), missing, second.path, third.path])
        assert kc.get_token() == TOKEN
        assert len(second.token_requests()) == 1
        assert third.requests == []
        assert fake_cli.calls() == []
    finally:
        second.close()
        third.close()


# --- protocol ------------------------------------------------------------------


def test_get_token_protocol(agent):
    assert kc.get_token() == TOKEN
    (method, path, headers, body) = agent.requests[0]
    assert (method, path) == ("POST", "/v1/token")
    assert headers["Host"] == "kc-agent.sock"
    assert headers["Content-Type"] == "application/json"
    for h in ("Origin", "Referer", "Sec-Fetch-Site"):
        assert h not in headers
    # No min_valid unless asked: the agent's default follows the lifetime.
    assert body == {"profile": "default"}


def test_get_token_parameters(agent, monkeypatch):
    monkeypatch.setenv("KC_AGENT_PROFILE", "analytics")
    kc.get_token()
    kc.get_token("other", scopes=["openid", "warehouse"], min_valid=120, force_refresh=True)
    kc.get_token(scopes="openid profile")
    bodies = [r[3] for r in agent.token_requests()]
    assert bodies[0] == {"profile": "analytics"}
    assert bodies[1] == {"profile": "other", "min_valid": 120.0, "scopes": ["openid", "warehouse"], "force_refresh": True}
    assert bodies[2]["scopes"] == ["openid", "profile"]


def test_new_connection_per_call(agent):
    # Forked kernels must not share a connection: every call connects anew.
    for _ in range(3):
        kc.get_token()
    assert agent.connections == 3 and len(agent.token_requests()) == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_works_in_a_forked_child(agent):
    kc.get_token()
    pid = os.fork()
    if pid == 0:  # the child: exit status tells the parent
        try:
            os._exit(0 if kc.get_token() == TOKEN else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert kc.get_token() == TOKEN
    assert agent.connections == 3


def test_token_info_hides_the_token(agent):
    info = kc.get_token_info()
    assert info.access_token == TOKEN
    assert info.token_type == "Bearer"
    assert info.expires_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert info.expires_in == 300
    assert info.profile == "default"
    for text in (repr(info), str(info), f"{info}", repr([info]), repr({"t": info})):
        assert TOKEN not in text
        assert "hidden" in text


with open(os.path.join(REPO, "internal", "bearer", "testdata", "vectors.json"), encoding="utf-8") as _f:
    BEARER_VECTORS = json.load(_f)  # the Go programs' rule, internal/bearer


@pytest.mark.parametrize("good", BEARER_VECTORS["tokens"])
def test_a_bearer_token_is_handed_on(agent, good):
    agent.token_answer = (200, {"access_token": good, "token_type": "Bearer", "expires_at": "2030-01-02T03:04:05Z", "expires_in": 300})
    assert kc.get_token() == good


@pytest.mark.parametrize("bad", [b for b in BEARER_VECTORS["not_tokens"] if b])
def test_a_token_that_is_not_a_bearer_token_is_refused(agent, bad):
    agent.token_answer = (200, {"access_token": bad, "token_type": "Bearer", "expires_at": "2030-01-02T03:04:05Z", "expires_in": 300})
    with pytest.raises(kc.KcAgentError) as e:
        kc.get_token()
    assert "bearer token" in str(e.value)
    # The message never shows the token (short vectors like "a b" occur in
    # any English sentence; a leaked token would be long).
    assert len(bad) < 5 or bad not in str(e.value)


def test_a_token_type_that_is_not_a_token_is_refused(agent):
    agent.token_answer = (200, {"access_token": TOKEN, "token_type": "Bearer x", "expires_at": "2030-01-02T03:04:05Z", "expires_in": 300})
    with pytest.raises(kc.KcAgentError):
        kc.get_token()


def test_expires_at_with_fraction_and_offset(agent):
    agent.token_answer = (200, {"access_token": TOKEN, "token_type": "Bearer", "expires_at": "2030-01-02T05:04:05.123456789+02:00", "expires_in": 1})
    info = kc.get_token_info()
    assert info.expires_at == datetime(2030, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)


# --- errors ----------------------------------------------------------------------


def test_login_required_carries_message_and_hint(agent):
    agent.token_answer = (401, {"error": "login_required", "message": "the login for profile \"default\" was revoked", "hint": "run `kc-agent login --profile default`"})
    with pytest.raises(kc.LoginRequired) as ei:
        kc.get_token()
    e = ei.value
    assert isinstance(e, kc.KcAgentError)
    assert e.code == "login_required"
    assert e.message == "the login for profile \"default\" was revoked"
    assert e.hint == "run `kc-agent login --profile default`"
    assert "kc-agent login --profile default" in str(e)
    # In Jupyter: one line, with the hint, instead of a traceback.
    lines = e._render_traceback_()
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith("LoginRequired: ") and "kc-agent login" in lines[0]
    # No chained http.client / socket exceptions to print.
    assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__)
    assert pickle.loads(pickle.dumps(e)).hint == e.hint


def test_unknown_profile_is_login_required(agent):
    agent.token_answer = (401, {"error": "unknown_profile", "message": "no profile \"x\"", "hint": "kc-agent login --profile x <issuer-url>"})
    with pytest.raises(kc.LoginRequired) as ei:
        kc.get_token("x")
    assert ei.value.code == "unknown_profile"


@pytest.mark.parametrize(
    "status,code",
    [(503, "unavailable"), (400, "invalid_scope"), (400, "bad_request")],
)
def test_other_agent_errors(agent, status, code):
    agent.token_answer = (status, {"error": code, "message": "it failed", "hint": "do this"})
    with pytest.raises(kc.KcAgentError) as ei:
        kc.get_token()
    assert type(ei.value) is kc.KcAgentError
    assert (ei.value.code, ei.value.message, ei.value.hint) == (code, "it failed", "do this")


def test_malformed_answers(agent):
    agent.token_answer = (200, {"token_type": "Bearer"})
    with pytest.raises(kc.KcAgentError, match="without a token"):
        kc.get_token()
    agent.token_answer = (500, ["not", "an", "object"])
    with pytest.raises(kc.KcAgentError, match="HTTP 500"):
        kc.get_token()


@pytest.mark.parametrize("i", range(len(BEARER_VECTORS["scrub"])))
def test_errors_scrub_like_the_go_cli(i):
    # The Go CLI's one error printer cuts the same (internal/bearer.Scrub).
    text, shown = BEARER_VECTORS["scrub"][i]
    e = kc.KcAgentError(text, hint=text)
    ok = e.message == shown and e.hint == shown
    assert ok, f"vector {i}"  # names no token in a failure message


def test_errors_never_show_a_token():
    e = kc.KcAgentError(f"server said Bearer {TOKEN}", hint=f"try {TOKEN}")
    for text in (str(e), repr(e), e._render_traceback_()[0]):
        assert TOKEN not in text and "[token]" in text


# --- refusals ---------------------------------------------------------------------


def test_refuses_a_directory_others_can_enter(agent, fake_cli):
    os.chmod(os.path.dirname(agent.path), 0o755)
    with pytest.raises(kc.UntrustedAgent) as ei:
        kc.get_token()
    assert "0755" in str(ei.value) and os.path.dirname(agent.path) in str(ei.value)
    assert agent.requests == []
    assert fake_cli.calls() == []  # never falls back, never autostarts there


def test_untrusted_first_candidate_stops_the_probe(monkeypatch, agent, fake_cli):
    bad = private_dir()
    os.chmod(bad, 0o777)
    monkeypatch.setattr(_discovery, "candidates", lambda: [os.path.join(bad, "agent.sock"), agent.path])
    with pytest.raises(kc.UntrustedAgent):
        kc.get_token()
    assert agent.requests == [] and fake_cli.calls() == []


def test_untrusted_later_candidate_is_skipped(monkeypatch, agent, fake_cli):
    # Someone planted the fallback place while ours is empty: the planted
    # one is never contacted, and the CLI (which starts an agent at ours)
    # takes over.
    empty = private_dir()
    bad = private_dir()
    os.chmod(bad, 0o777)
    monkeypatch.setattr(_discovery, "candidates", lambda: [os.path.join(empty, "agent.sock"), os.path.join(bad, "agent.sock")])
    kc.get_token()
    assert len(fake_cli.calls()) == 1


needs_root = pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to act as another uid")
NOBODY = 65534


@needs_root
def test_refuses_a_directory_owned_by_someone_else(agent, fake_cli):
    os.chown(os.path.dirname(agent.path), NOBODY, NOBODY)
    with pytest.raises(kc.UntrustedAgent, match=f"belongs to uid {NOBODY}"):
        kc.get_token()
    assert agent.requests == [] and fake_cli.calls() == []


@needs_root
def test_refuses_a_peer_running_as_someone_else(monkeypatch, fake_cli):
    # The directory is ours and 0700, but the process that listens runs as
    # nobody: SO_PEERCRED tells. It reports what it received on stdout.
    d = private_dir()
    path = os.path.join(d, "agent.sock")
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    server = textwrap.dedent(
        """
        import os, socket, sys
        os.setgid(65534); os.setuid(65534)
        s = socket.socket(fileno=int(sys.argv[1]))
        s.listen(1)
        print("listening", flush=True)
        c, _ = s.accept()
        c.settimeout(3)
        data = b""
        try:
            while True:
                b = c.recv(4096)
                if not b:
                    break
                data += b
        except socket.timeout:
            pass
        print("received", len(data), flush=True)
        """
    )
    p = subprocess.Popen([sys.executable, "-c", server, str(ls.fileno())], pass_fds=[ls.fileno()], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "listening"
        monkeypatch.setenv("KC_AGENT_SOCK", path)
        with pytest.raises(kc.UntrustedAgent, match=f"runs as uid {NOBODY}"):
            kc.get_token()
        assert p.stdout.readline().strip() == "received 0"
    finally:
        p.kill()
        p.wait()
        ls.close()
    assert fake_cli.calls() == []


# --- CLI fallback -------------------------------------------------------------------


def test_falls_back_to_the_cli_when_no_agent_answers(fake_cli):
    info = kc.get_token_info("analytics", scopes=["openid"], min_valid=90, force_refresh=True)
    assert info.access_token == TOKEN and info.profile == "analytics"
    assert fake_cli.calls() == [["token", "--format", "json", "--profile", "analytics", "--min-valid", "90s", "--scope", "openid", "--force-refresh"]]


def test_falls_back_to_the_cli_without_af_unix(agent, fake_cli, monkeypatch):
    monkeypatch.setattr(_discovery, "HAVE_AF_UNIX", False)
    assert kc.get_token() == TOKEN
    assert agent.requests == []
    assert fake_cli.calls() == [["token", "--format", "json", "--profile", "default"]]


def test_cli_exit_4_is_login_required(fake_cli):
    fake_cli.configure(4, "", "kc-agent: error: the login for profile \"default\" is gone\nkc-agent: hint: run `kc-agent login --profile default`\n")
    with pytest.raises(kc.LoginRequired) as ei:
        kc.get_token()
    assert ei.value.message == "the login for profile \"default\" is gone"
    assert ei.value.hint == "run `kc-agent login --profile default`"


def test_cli_exit_3_is_agent_unavailable(fake_cli):
    fake_cli.configure(3, "", "kc-agent: error: no kc-agent answers at /x: no socket\n")
    with pytest.raises(kc.AgentUnavailable) as ei:
        kc.get_token()
    assert "no kc-agent answers" in ei.value.message and "kc-agent run" in ei.value.hint


def test_cli_failure_never_shows_its_stdout(fake_cli):
    fake_cli.configure(1, json.dumps({"access_token": TOKEN}), "")
    with pytest.raises(kc.KcAgentError) as ei:
        kc.get_token()
    assert TOKEN not in str(ei.value) and "exited 1" in str(ei.value)


def test_no_agent_and_no_cli_says_how_to_start():
    with pytest.raises(kc.AgentUnavailable) as ei:
        kc.get_token()
    assert "kc-agent run" in ei.value.hint and "service install" in ei.value.hint
    assert os.environ["KC_AGENT_SOCK"] in ei.value.message


def test_cli_found_in_install_location(monkeypatch, tmp_path):
    d = tmp_path / "home" / ".local" / "bin"
    d.mkdir(parents=True)
    (d / "kc-agent").write_text("#!/bin/sh\n")
    (d / "kc-agent").chmod(0o755)
    monkeypatch.setattr(_cli, "CLI_LOCATIONS", ("~/.local/bin",))
    assert _cli.find_cli() == str(d / "kc-agent")


# --- routes ---------------------------------------------------------------------------


def listening_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def test_route_url(agent):
    ls, port = listening_port()
    try:
        agent.proxy_answer = (200, {"configured": True, "running": True, "addr": f"127.0.0.1:{port}", "url": f"http://kc:SECRET@127.0.0.1:{port}",
                                    "routes": [{"name": "warehouse", "url": f"http://127.0.0.1:{port}/warehouse/", "upstream": "https://w.example", "profile": "default"}]})
        assert kc.route_url("warehouse") == f"http://127.0.0.1:{port}/warehouse"
        assert kc.routes() == {"warehouse": f"http://127.0.0.1:{port}/warehouse"}
        with pytest.raises(kc.KcAgentError, match="no route named 'lake'; the agent has warehouse"):
            kc.route_url("lake")
        assert agent.requests[0][:2] == ("GET", "/v1/proxy")
    finally:
        ls.close()


def test_route_url_without_proxy(agent):
    with pytest.raises(kc.KcAgentError, match="no routes are configured"):
        kc.route_url("warehouse")
    agent.proxy_answer = (200, {"configured": True, "running": False, "error": "listen tcp 127.0.0.1:8421: address already in use", "hint": "set proxy.listen", "routes": []})
    with pytest.raises(kc.KcAgentError, match="address already in use") as ei:
        kc.route_url("warehouse")
    assert ei.value.hint == "set proxy.listen"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/net/tcp is Linux's")
def test_route_url_nobody_listening(agent):
    ls, port = listening_port()
    ls.close()
    agent.proxy_answer = (200, {"configured": True, "running": True, "routes": [{"name": "w", "url": f"http://127.0.0.1:{port}/w"}]})
    with pytest.raises(kc.KcAgentError, match="nobody listens"):
        kc.route_url("w")


@needs_root
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/net/tcp is Linux's")
def test_route_url_refuses_a_port_held_by_another_user(agent):
    squatter = subprocess.Popen(
        [sys.executable, "-c", "import os,socket,sys,time\nos.setgid(65534); os.setuid(65534)\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(1)\nprint(s.getsockname()[1], flush=True)\ntime.sleep(30)"],
        stdout=subprocess.PIPE, text=True)
    try:
        port = int(squatter.stdout.readline())
        agent.proxy_answer = (200, {"configured": True, "running": True, "routes": [{"name": "w", "url": f"http://127.0.0.1:{port}/w"}]})
        with pytest.raises(kc.UntrustedAgent, match=f"served by uid {NOBODY}"):
            kc.route_url("w")
    finally:
        squatter.kill()
        squatter.wait()


def test_route_url_via_cli(fake_cli, tmp_path):
    ls, port = listening_port()
    try:
        fake_cli.configure(0, f"export HTTP_PROXY='http://kc:SECRET@127.0.0.1:{port}'\nexport KC_AGENT_URL_DATA_LAKE='http://127.0.0.1:{port}/data-lake'\n")
        assert kc.route_url("data-lake") == f"http://127.0.0.1:{port}/data-lake"
        assert fake_cli.calls() == [["env", "--shell", "sh"]]
    finally:
        ls.close()


# --- nothing leaks ----------------------------------------------------------------------


def test_debug_logging_never_shows_the_token(agent, fake_cli, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    kc.get_token()
    kc.get_token(force_refresh=True)
    monkeypatch.setenv("KC_AGENT_SOCK", "/nonexistent/agent.sock")
    kc.get_token()  # through the CLI
    assert "kc_agent_client" in {r.name for r in caplog.records}
    assert TOKEN not in caplog.text and FRESH not in caplog.text


def test_agent_socket(agent, monkeypatch):
    assert kc.agent_socket() == agent.path
    assert agent.requests[0][:2] == ("GET", "/v1/health")
    monkeypatch.setenv("KC_AGENT_SOCK", "/nonexistent/agent.sock")
    assert kc.agent_socket() is None


@pytest.mark.parametrize("blocked", [["requests", "httpx"], ["requests"], ["httpx"]])
def test_core_works_without_the_extras(blocked):
    # The core is stdlib only; KcAgentAuth works with whichever library is there.
    code = (
        "import sys\n"
        + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
        + "import kc_agent_client as kc\n"
        "a = kc.KcAgentAuth()\n"
        "print(type(a).__mro__[1].__module__)\n"
        "try:\n    kc.get_token()\nexcept kc.AgentUnavailable:\n    print('unavailable')\n"
    )
    src = os.path.dirname(os.path.dirname(kc.__file__))
    env = dict(os.environ, PYTHONPATH=src)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "unavailable"


def test_hints_name_the_parameter_not_the_flag(agent):
    agent.token_answer = (503, {"error": "unavailable", "message": "the identity provider issues tokens that live shorter than the 1m0s asked for", "hint": "ask for a smaller --min-valid"})
    with pytest.raises(kc.KcAgentError) as ei:
        kc.get_token()
    assert ei.value.hint == "ask for a smaller min_valid"


# --- one deadline for the whole exchange -------------------------------------------


class DrippingAgent:
    """Reads a request, then answers a valid token one byte every `every`
    seconds: each read finds a byte in time, only the whole takes long."""

    def __init__(self, path: str, every: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.every = every
        self.sent = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        with c:
            c.recv(65536)
            body = json.dumps({"access_token": TOKEN, "token_type": "Bearer", "expires_at": "2030-01-02T03:04:05Z", "expires_in": 300}).encode()
            answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            for i in range(len(answer)):
                try:
                    c.sendall(answer[i : i + 1])
                except OSError:
                    return  # the client gave up
                self.sent += 1
                time.sleep(self.every)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(10)


def test_a_dripping_agent_meets_one_deadline(monkeypatch):
    # The answer takes ~300 bytes * 20 ms = 6 s, each byte well within the
    # deadline; the whole exchange is allowed 0.5 s.
    d = private_dir()
    path = os.path.join(d, "agent.sock")
    drip = DrippingAgent(path, 0.02)
    try:
        monkeypatch.setenv("KC_AGENT_SOCK", path)
        monkeypatch.setattr(_transport, "REQUEST_TIMEOUT", 0.5)
        with pytest.raises(kc.AgentUnavailable) as ei:
            kc.get_token()
        assert "did not answer within 0.5 s" in ei.value.message
        assert 0 < drip.sent < 200  # it stopped waiting long before the end
    finally:
        drip.close()
        shutil.rmtree(d, ignore_errors=True)


# --- duplicate keys ------------------------------------------------------------------


with open(os.path.join(REPO, "ipc", "testdata", "duplicate_keys.json"), encoding="utf-8") as _f:
    KEY_VECTORS = json.load(_f)  # shared with the Go client (ipc, TestAnswerKeyVectors)


class RawAgent:
    """Answers every connection with `answer`, bytes as written."""

    def __init__(self, path: str, answer: bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.answer = answer
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(5)
                try:
                    c.recv(65536)
                    c.sendall(self.answer)
                    while c.recv(65536):  # the rest of the request; then the client closes
                        pass
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("case", KEY_VECTORS["cases"], ids=lambda c: c["name"])
def test_answer_key_vectors(case, monkeypatch):
    body = case["answer"].encode()
    answer = b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (case["status"], len(body), body)
    d = private_dir()
    raw = RawAgent(os.path.join(d, "agent.sock"), answer)
    try:
        monkeypatch.setenv("KC_AGENT_SOCK", raw.sock.getsockname())
        try:
            kc.get_token()
            err = None
        except kc.KcAgentError as e:
            err = e
        ambiguous = err is not None and "duplicate key" in err.message
        if case["ok"]:
            assert not ambiguous, err
            assert case["status"] != 200 or err is None, err
        else:
            assert ambiguous, err
            assert type(err) is kc.KcAgentError  # not LoginRequired, whatever the code said
    finally:
        raw.close()
        shutil.rmtree(d, ignore_errors=True)


def test_answer_keys_cover_what_the_client_reads():
    # Every key the package reads from an answer (doc.get("…"), r.get("…"), …)
    # is in ANSWER_KEYS, so a case variant of it is refused rather than
    # ignored; so is every field of the typed sign-in answer (named as the
    # agent's JSON names them, as Go's answerKeys takes a type's names).
    import dataclasses
    import glob

    from kc_agent_client import _signin

    pkg = os.path.dirname(_answer.__file__)
    src = "".join(open(f, encoding="utf-8").read() for f in sorted(glob.glob(os.path.join(pkg, "*.py"))))
    read = set(re.findall(r"""\b(?:doc|r|ident|st|s|p|health)\.get\(["']([a-z_]+)["']""", src)) | set(re.findall(r"""\br\[["']([a-z_]+)["']\]""", src))
    read |= {f.name for t in (_signin.LoginStatus, _signin.LoginIdentity) for f in dataclasses.fields(t)}
    assert {"access_token", "user_code", "sign_ins", "started_at"} <= read
    assert read <= _answer.ANSWER_KEYS, read - _answer.ANSWER_KEYS


@pytest.mark.parametrize("a,b", [("access_token", "ACCESS_TOKEN"), ("acce\u017f\u017f_token", "access_token"), ("\u212aelvin", "kelvin"), ("\u03c2", "\u03a3")])
def test_keys_fold_as_in_go(a, b):
    assert _answer.fold(a) == _answer.fold(b)


def test_an_older_agent_is_named_with_both_versions(agent):
    # An agent from before /v1/login answers "no such endpoint": the client
    # says which versions meet, and how to get the newer agent running.
    import kc_agent_client

    agent.handlers[("GET", "/v1/health")] = lambda p, b: (200, {"ok": True, "version": "0.5.0"})
    signed_in = agent.token_answer
    agent.token_answer = (401, {"error": "login_required", "message": "profile \"default\" is not logged in"})
    with pytest.raises(kc_agent_client.KcAgentError) as ei:
        kc_agent_client.login(flow="device", timeout=5)
    agent.token_answer = signed_in
    e = ei.value
    assert e.code == "agent_too_old", e
    assert "kc-agent 0.5.0" in e.message and "kc-agent-client " + kc_agent_client.__version__ in e.message
    assert "POST /v1/login" in e.message and "restart" in e.hint
    # What it does know still works.
    assert kc_agent_client.get_token()


def test_skew_is_read_from_health_not_from_the_message(agent):
    # The trigger is structural (404 bad_request: the agent's catch-all),
    # the verdict is /v1/health's version: another wording still names an
    # older agent; the same version is not skew, and the answer is shown
    # as it is.
    import kc_agent_client

    def unknown(p, b):
        return 404, {"error": "bad_request", "message": "unknown path"}

    agent.handlers[("POST", "/v1/login")] = unknown
    agent.handlers[("GET", "/v1/health")] = lambda p, b: (200, {"ok": True, "version": "0.5.0"})
    with pytest.raises(kc_agent_client.KcAgentError) as ei:
        kc_agent_client.login(flow="device", timeout=5, force=True)
    assert ei.value.code == "agent_too_old" and "kc-agent 0.5.0" in ei.value.message
    agent.handlers[("GET", "/v1/health")] = lambda p, b: (200, {"ok": True, "version": kc_agent_client.__version__})
    with pytest.raises(kc_agent_client.KcAgentError) as ei:
        kc_agent_client.login(flow="device", timeout=5, force=True)
    assert ei.value.code != "agent_too_old" and "unknown path" in ei.value.message


def test_modules_use_each_others_named_seams_only():
    # The package's modules talk through each other's public names
    # (_transport.request, _cli.run, _signin.start, …), never through a
    # sibling's private ones; and each stays within the size limits.
    import ast
    import glob

    pkg = os.path.dirname(_answer.__file__)
    files = sorted(glob.glob(os.path.join(pkg, "*.py")))
    mods = {os.path.basename(f)[:-3] for f in files}
    bad, big = [], []
    for f in files:
        text = open(f, encoding="utf-8").read()
        if text.count("\n") > 450:
            big.append(os.path.basename(f))
        for n in ast.walk(ast.parse(text)):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in mods:
                if n.attr.startswith("_") and not n.attr.startswith("__"):
                    bad.append(f"{os.path.basename(f)}:{n.lineno} {n.value.id}.{n.attr}")
            if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module in mods:
                bad += [f"{os.path.basename(f)}:{n.lineno} from {n.module} import {a.name}" for a in n.names if a.name.startswith("_")]
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 80:
                big.append(f"{os.path.basename(f)}:{n.name}")
    assert not bad and not big, (bad, big)
