"""The Windows transport (the agent's named pipe) against a fake of the few
Windows calls it makes (_winpipe._Win32): no Windows CPython runs in CI.
The fake serves the pipe with the fake agent's HTTP handler, so the
requests are the real protocol."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest

from kc_agent_client import AgentUnavailable, KcAgentError, UntrustedAgent, _discovery, _transport, _winpipe, agent_socket, get_token

from conftest import TOKEN

MY_SID = "S-1-5-21-1004336348-1177238915-682003330-1001"
OTHER_SID = "S-1-5-21-1004336348-1177238915-682003330-1002"
MY_PIPE = "\\\\.\\pipe\\kc-agent-" + MY_SID


def busy() -> OSError:
    e = OSError(16, "All pipe instances are busy")
    e.winerror = _winpipe.ERROR_PIPE_BUSY
    return e


class FakePipe(io.RawIOBase):
    def __init__(self, sock: socket.socket, win: "FakeWin32") -> None:
        self._sock, self._win = sock, win

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        return self._sock.recv_into(b)

    def write(self, b) -> int:
        # A pipe may take part of a write: take at most 7 bytes at a time.
        chunk = bytes(b[:7])
        self._win.sent += chunk
        self._sock.sendall(chunk)
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            self._win.closed += 1
            self._sock.close()
        super().close()


class FakeWin32:
    """Pipes served by the fake agent's handler, owned by ``server``."""

    def __init__(self, agent) -> None:
        self.agent = agent
        self.my_sid = MY_SID
        self.server = MY_SID  # a SID, or an OSError to raise
        self.open_errors = []  # raised by open(), one per call, before it succeeds
        self.always_busy = False
        self.hung = []  # with hang=True: the agent's ends of pipes it never answers on
        self.hang = False
        self.opened, self.waits = [], []
        self.sent = bytearray()
        self.closed = 0

    def current_sid(self) -> str:
        return self.my_sid

    def open(self, path: str):
        self.opened.append(path)
        if self.always_busy:
            raise busy()
        if self.open_errors:
            raise self.open_errors.pop(0)
        if self.agent is None or path != MY_PIPE and not path.endswith("kc-agent-test"):
            raise FileNotFoundError(2, "The system cannot find the file specified", path)
        ours, theirs = socket.socketpair()
        if self.hang:
            self.hung.append(theirs)
        else:
            threading.Thread(target=self._serve, args=(theirs,), daemon=True).start()
        return FakePipe(ours, self)

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.agent.Handler(conn, "pipe", self.agent.server)
        finally:
            conn.close()

    def wait(self, path: str, timeout_ms: float) -> bool:
        self.waits.append(timeout_ms)
        time.sleep(min(timeout_ms / 1000, 0.01))
        return True

    def server_sid(self, pipe) -> str:
        assert isinstance(pipe, FakePipe)
        if isinstance(self.server, Exception):
            raise self.server
        return self.server


@pytest.fixture
def windows(monkeypatch, agent):
    """This process is on Windows, with the fake agent on its pipe."""
    monkeypatch.setattr(_discovery, "_goos", lambda: "windows")
    monkeypatch.delenv("KC_AGENT_SOCK", raising=False)
    fake = FakeWin32(agent)
    monkeypatch.setattr(_winpipe, "_api", fake)
    return fake


def test_discovery_is_the_pipe_named_by_the_sid(windows):
    assert _discovery.candidates() == [MY_PIPE]


def test_get_token_over_the_pipe(windows, agent, fake_cli):
    assert get_token() == TOKEN
    assert windows.opened == [MY_PIPE]
    [(method, path, headers, body)] = agent.requests
    assert (method, path, headers["Host"], body["profile"]) == ("POST", "/v1/token", "kc-agent.sock", "default")
    assert fake_cli.calls() == []  # no subprocess per call
    assert windows.closed == 1


def test_a_connection_per_call(windows, agent):
    get_token()
    get_token()
    assert len(windows.opened) == 2 and agent.connections == 2 and windows.closed == 2


def test_agent_socket_is_the_pipe(windows):
    assert agent_socket() == MY_PIPE


def test_pipe_served_by_another_account_is_refused_before_sending(windows, agent, fake_cli):
    windows.server = OTHER_SID
    with pytest.raises(UntrustedAgent) as ei:
        get_token()
    assert OTHER_SID in str(ei.value) and MY_SID in str(ei.value)
    assert bytes(windows.sent) == b"" and agent.requests == []
    assert windows.closed == 1
    assert fake_cli.calls() == []  # never a fallback past an impostor


def test_pipe_whose_server_can_not_be_identified_is_refused(windows, agent, fake_cli):
    windows.server = PermissionError(13, "Access is denied")
    with pytest.raises(UntrustedAgent, match="can not tell who serves"):
        get_token()
    assert bytes(windows.sent) == b"" and fake_cli.calls() == []


def test_pipe_that_shuts_the_user_out_is_someone_elses(windows, fake_cli):
    windows.open_errors = [PermissionError(13, "Access is denied")]
    with pytest.raises(UntrustedAgent, match="another account holds it"):
        get_token()
    assert fake_cli.calls() == []


def test_no_pipe_falls_back_to_the_cli(windows, fake_cli):
    windows.agent = None
    assert get_token() == TOKEN
    assert windows.opened == [MY_PIPE]
    assert fake_cli.calls()[0][:3] == ["token", "--format", "json"]


def test_a_busy_pipe_is_waited_for(windows, agent):
    windows.open_errors = [busy()]
    assert get_token() == TOKEN
    assert len(windows.waits) == 1 and len(windows.opened) == 2


def test_a_pipe_busy_past_the_timeout_counts_as_no_agent(windows, fake_cli, monkeypatch):
    monkeypatch.setattr(_transport, "CONNECT_TIMEOUT", 0.05)
    windows.always_busy = True
    assert get_token() == TOKEN  # from the CLI
    assert len(windows.waits) >= 1 and len(fake_cli.calls()) == 1


def test_kc_agent_sock_names_another_pipe(windows, monkeypatch):
    monkeypatch.setenv("KC_AGENT_SOCK", "\\\\.\\pipe\\kc-agent-test")
    assert get_token() == TOKEN
    assert windows.opened == ["\\\\.\\pipe\\kc-agent-test"]


def test_kc_agent_sock_must_be_a_pipe_on_windows(windows, monkeypatch):
    monkeypatch.setenv("KC_AGENT_SOCK", "C:\\Users\\ana\\agent.sock")
    with pytest.raises(KcAgentError, match="named pipe") as ei:
        get_token()
    assert ei.value.code == "usage" and windows.opened == []


def test_no_sid_no_pipe(windows, fake_cli):
    def fail():
        raise OSError(1314, "A required privilege is not held by the client")

    windows.current_sid = fail
    with pytest.raises(KcAgentError, match="SID"):
        get_token()
    assert windows.opened == []


def test_a_hung_agent_is_given_up_on(windows, monkeypatch):
    # A pipe has no timeouts: the read runs aside and the caller stops
    # waiting at the deadline; the pipe is closed once that read ends.
    monkeypatch.setattr(_transport, "REQUEST_TIMEOUT", 0.3)
    windows.hang = True
    start = time.monotonic()
    with pytest.raises(AgentUnavailable, match="did not answer within"):
        get_token()
    assert time.monotonic() - start < 3
    assert windows.closed == 0  # a read is still in flight: not closed under it
    windows.hung[0].close()  # the agent goes away: the read ends
    for _ in range(100):
        if windows.closed:
            break
        time.sleep(0.01)
    assert windows.closed == 1


def test_sendall_writes_everything_through_short_writes():
    class Short(io.RawIOBase):
        def __init__(self):
            self.got = b""

        def write(self, b):
            self.got += bytes(b[:3])
            return min(3, len(b))

    raw = Short()
    _winpipe.PipeSocket(raw).sendall(b"POST /v1/token HTTP/1.1\r\n")
    assert raw.got == b"POST /v1/token HTTP/1.1\r\n"


def test_a_pipe_that_takes_nothing_is_an_error():
    class Stuck(io.RawIOBase):
        def write(self, b):
            return 0

    with pytest.raises(OSError):
        _winpipe.PipeSocket(Stuck()).sendall(b"x")


def test_is_pipe():
    assert _winpipe.is_pipe(MY_PIPE) and _winpipe.is_pipe("\\\\.\\PIPE\\x")
    assert not _winpipe.is_pipe("C:\\pipe\\x") and not _winpipe.is_pipe("/tmp/agent.sock")
