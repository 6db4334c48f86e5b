"""Tokens in the clear go only down connections whose other end was checked:
real squatters of uid 65534 (root and setpriv needed) on the spellings of
loopback the review used, against kc.session() and kc.httpx_client(); and
the rule's edge cases (no socket, root, the opt-in) with a fake table."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import kc_agent_client as kc
from kc_agent_client import _connguard, _tcpowner

from conftest import REPO, TOKEN

requests = pytest.importorskip("requests")
httpx = pytest.importorskip("httpx")

# The squatter: listens where it is told, answers every request 401 with
# keep-alive (the trick that made git reuse its connection), and on "stop"
# prints how many bytes it received in all.
SQUATTER = r"""
import socket, sys, threading
fam, host = (socket.AF_INET6, sys.argv[1]) if ":" in sys.argv[1] else (socket.AF_INET, sys.argv[1])
s = socket.socket(fam)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, int(sys.argv[2])))
s.listen(16)
print(s.getsockname()[1], flush=True)
got = [0]
def serve(c):
    while True:
        try:
            b = c.recv(65536)
        except OSError:
            return
        if not b:
            return
        got[0] += len(b)
        c.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
def accept():
    while True:
        try:
            c, _ = s.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
sys.stdin.readline()
print(got[0], flush=True)
"""


def _need_other_uid():
    if not sys.platform.startswith("linux") or os.getuid() != 0 or not shutil.which("setpriv"):
        if os.environ.get("KC_AGENT_REQUIRE_OTHER_UID") == "1":
            pytest.fail("needs root and setpriv to act as another user (KC_AGENT_REQUIRE_OTHER_UID=1)")
        pytest.skip("needs root and setpriv to act as another user")


class Squatter:
    def __init__(self, host: str, port: int = 0) -> None:
        # Debian's python: uid 65534 can run it (a pyenv under /root it can't).
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        self.p = subprocess.Popen(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", py, "-c", SQUATTER, host, str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        line = self.p.stdout.readline()
        if not line.strip():
            self.p.wait(5)
            raise OSError(f"the squatter could not listen on {host}:{port}")
        self.port = int(line)

    def received(self) -> int:
        self.p.stdin.write("stop\n")
        self.p.stdin.flush()
        n = int(self.p.stdout.readline())
        self.p.wait(5)
        return n


class Own:
    """The user's own server: 200 with the Authorization it saw."""

    def __init__(self, host: str, port: int = 0) -> None:
        own = self
        self.seen = []

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                own.seen.append((self.path, self.headers.get("Authorization"), id(self.connection)))
                data = json.dumps({"ok": True}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        self.server = Server((host, port), H)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _all_clients_refuse(url: str) -> None:
    with kc.session() as s:
        with pytest.raises(kc.UntrustedAgent, match="uid 65534"):
            s.get(url, timeout=5)
    with kc.httpx_client(timeout=5) as c:
        with pytest.raises(kc.UntrustedAgent, match="uid 65534"):
            c.get(url)

    async def main():
        async with kc.httpx_client(asynchronous=True, timeout=5) as c:
            await c.get(url)

    with pytest.raises(kc.UntrustedAgent, match="uid 65534"):
        asyncio.run(main())


def test_v6_socket_on_v4_mapped_loopback_gets_nothing(agent):
    # An AF_INET6 socket on ::ffff:127.0.0.1 shows up in /proc/net/tcp6
    # only; the request to 127.0.0.1 (and to localhost, when that resolves
    # there) is refused before its first byte.
    _need_other_uid()
    sq = Squatter("::ffff:127.0.0.1")
    try:
        _all_clients_refuse(f"http://127.0.0.1:{sq.port}/x")
        _all_clients_refuse(f"http://[::ffff:127.0.0.1]:{sq.port}/x")
    finally:
        assert sq.received() == 0


def test_v4_squatter_beside_the_users_v6_server(agent):
    # The user's server on [::1]:P, another user on 127.0.0.1:P: "localhost"
    # may resolve to either; the squatter gets nothing whichever it is, and
    # the user's server keeps working.
    _need_other_uid()
    for _ in range(5):  # 127.0.0.1:P may be taken by another test meanwhile
        own = Own("::1")
        try:
            sq = Squatter("127.0.0.1", own.port)
            break
        except OSError:
            own.close()
    else:
        pytest.fail("found no port free on both ::1 and 127.0.0.1")
    try:
        _all_clients_refuse(f"http://127.0.0.1:{own.port}/x")
        with kc.session() as s:
            assert s.get(f"http://[::1]:{own.port}/mine").status_code == 200
            try:
                s.get(f"http://localhost:{own.port}/mine-too")
            except kc.UntrustedAgent:
                pass  # localhost resolved to the squatter's address first
        assert [a for _, a, _ in own.seen] == [f"Bearer {TOKEN}"] * len(own.seen) and own.seen
    finally:
        own.close()
        assert sq.received() == 0


def test_v4_mapped_url_reaches_only_the_user(agent):
    # http://[::ffff:127.0.0.1]:P is loopback on every Python version; the
    # connection it makes is checked like any other.
    _need_other_uid()
    sq = Squatter("127.0.0.1")
    try:
        _all_clients_refuse(f"http://[::ffff:127.0.0.1]:{sq.port}/x")
    finally:
        assert sq.received() == 0
    own = Own("127.0.0.1")
    try:
        with kc.session() as s:
            assert s.get(f"http://[::ffff:127.0.0.1]:{own.port}/mine").status_code == 200
        assert own.seen[0][1] == f"Bearer {TOKEN}"
    finally:
        own.close()


def test_pool_never_keeps_an_unchecked_connection(agent):
    # A tokenless request is checked too: the squatter's kept-alive
    # connection never enters the pool, so the token can't ride on it.
    # The user's own connections are reused as before.
    _need_other_uid()
    sq = Squatter("127.0.0.1")
    try:
        with kc.session() as s:
            for auth in (None, kc.KcAgentAuth()):
                with pytest.raises(kc.UntrustedAgent):
                    s.get(f"http://127.0.0.1:{sq.port}/x", auth=auth)
    finally:
        assert sq.received() == 0
    own = Own("127.0.0.1")
    try:
        with kc.session() as s:
            for _ in range(3):
                assert s.get(f"http://127.0.0.1:{own.port}/again").status_code == 200
        assert len({c for _, _, c in own.seen}) == 1, "the checked pool did not reuse the user's connection"
    finally:
        own.close()


# --- the rule's edge cases, with a fake owner table ---------------------------


@pytest.fixture
def own_server():
    s = Own("127.0.0.1")
    yield s
    s.close()


def _fake(monkeypatch, conn, listener):
    # The tests may run as root: "me" is uid 1000 here, so root is another.
    monkeypatch.setattr(_tcpowner, "me", lambda: 1000)
    monkeypatch.setattr(_tcpowner, "connection_owner", lambda local, remote: conn)
    monkeypatch.setattr(_tcpowner, "listener_owner", lambda addr: listener)


@pytest.mark.parametrize(
    "conn,listener,unsafe,ok",
    [
        (None, None, False, False),  # no such socket: never "nobody listens, go ahead"
        (None, None, True, True),  # the opt-in covers an owner that can't be named
        (0, 0, False, False),  # root's listener may hand the connection to anyone
        (0, 0, True, True),
        (0, 1000, False, True),  # not yet accepted by the user's own listener
        (1000, None, False, True),
        (1000, None, True, True),
        (65534, 65534, True, False),  # never another known user, opt-in or not
    ],
)
def test_owner_rule(agent, own_server, monkeypatch, conn, listener, unsafe, ok):
    _fake(monkeypatch, conn, listener)
    with kc.session(unsafe_cleartext=unsafe) as s:
        if ok:
            assert s.get(f"http://127.0.0.1:{own_server.port}/x").status_code == 200
        else:
            with pytest.raises(kc.UntrustedAgent):
                s.get(f"http://127.0.0.1:{own_server.port}/x")
    assert len(own_server.seen) == (1 if ok else 0)


def test_windows_table_rows():
    # MIB_TCPTABLE_OWNER_PID: ports in network order, the rest little-endian.
    import struct

    row4 = struct.pack("<I", 5) + bytes([127, 0, 0, 1]) + struct.pack(">HH", 8080, 0) + bytes([127, 0, 0, 1]) + struct.pack(">HH", 50000, 0) + struct.pack("<I", 4242)
    assert _tcpowner.parse_table(struct.pack("<I", 1) + row4, six=False) == [(("127.0.0.1", 8080), ("127.0.0.1", 50000), 5, 4242)]
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1")
    row6 = mapped + b"\0" * 4 + struct.pack(">HH", 8080, 0) + mapped + b"\0" * 4 + struct.pack(">HH", 50000, 0) + struct.pack("<II", 2, 7)
    rows = _tcpowner.parse_table(struct.pack("<I", 1) + row6, six=True)
    assert [(_tcpowner.unmapped(l[0]), l[1], _tcpowner.unmapped(r[0]), r[1], st, pid) for l, r, st, pid in rows] == [("127.0.0.1", 8080, "127.0.0.1", 50000, 2, 7)]
    assert _tcpowner._same(rows[0][0], ("127.0.0.1", 8080))
    with pytest.raises(ValueError):
        _tcpowner.parse_table(struct.pack("<I", 3) + row4, six=False)


def test_windows_lookup_by_pid(monkeypatch):
    # The owner of the connection's other end is the SID of its process; a
    # socket without a process has no owner (refused).
    from kc_agent_client import _winpipe

    class Win:
        def process_sid(self, pid):
            return {7: "S-1-5-21-1-2-3-1001"}[pid]

    monkeypatch.setattr(_winpipe, "_api", Win())
    rows = {False: [(("127.0.0.1", 8080), ("127.0.0.1", 50000), 5, 7), (("127.0.0.1", 8081), ("127.0.0.1", 50001), 5, 0)], True: []}
    assert _tcpowner._windows_find(("127.0.0.1", 8080), ("127.0.0.1", 50000), table=rows.get) == "S-1-5-21-1-2-3-1001"
    assert _tcpowner._windows_find(("127.0.0.1", 8080), ("127.0.0.1", 1), table=rows.get) is None
    with pytest.raises(_tcpowner.NoOwner):
        _tcpowner._windows_find(("127.0.0.1", 8081), ("127.0.0.1", 50001), table=rows.get)


with open(os.path.join(REPO, "internal", "loopback", "testdata", "hosts.json"), encoding="utf-8") as _f:
    _HOSTS = json.load(_f)


@pytest.mark.parametrize("case", _HOSTS, ids=[c["host"] or "(empty)" for c in _HOSTS])
def test_loopback_vectors(case):
    # The same vectors the Go rule (internal/loopback) runs.
    assert _connguard.is_loopback_host(case["host"]) == case["loopback"]


def test_a_root_listener_needs_the_opt_in():
    # Root's socket may be handed to a service of another user and reports
    # uid 0 until that service accepts: a user (65534 here) whose server
    # is not at the other end sends nothing there unless opted in. The
    # session checks tokenless connections too, so no token is needed.
    _need_other_uid()
    own = Own("127.0.0.1")  # this test runs as root: root's listener
    prog = (
        "import sys, kc_agent_client as kc\n"
        "for unsafe in (False, True):\n"
        "    try:\n"
        "        with kc.session(unsafe_cleartext=unsafe) as s:\n"
        "            s.auth = None\n"
        "            print(unsafe, s.get(sys.argv[1], timeout=5).status_code)\n"
        "    except kc.UntrustedAgent as e:\n"
        "        print(unsafe, 'refused', e)\n"
    )
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.path.join(REPO, "clients", "python", "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        cp = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", prog, f"http://127.0.0.1:{own.port}/x"],
            capture_output=True, text=True, env=env, timeout=60,
        )
        lines = cp.stdout.splitlines()
        assert len(lines) == 2, cp.stdout + cp.stderr
        assert lines[0].startswith("False refused") and "served by uid 0" in lines[0] and "unsafe_cleartext=True" in lines[0], lines[0]
        assert lines[1] == "True 200", lines[1]
        assert len(own.seen) == 1
    finally:
        own.close()
