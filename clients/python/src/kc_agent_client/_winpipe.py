"""The agent's named pipe on Windows (``\\\\.\\pipe\\kc-agent-<user SID>``),
with the standard library: the pipe is opened as a file, and the account
of the process serving it is checked with ctypes before anything is sent,
as ``SO_PEERCRED`` is on Linux. It is opened with CreateFile rather than
open(path): so that the server can not impersonate this user
(``SECURITY_SQOS_PRESENT | SECURITY_ANONYMOUS``, as go-winio's client does),
and so that a busy pipe reads as ERROR_PIPE_BUSY (the C runtime's open
turns it into EINVAL). The handle then becomes a plain unbuffered file.

A pipe served by another account (someone who created the pipe first, to
collect tokens) is refused with UntrustedAgent, like a socket directory
someone else planted.

Everything that calls Windows sits in ``_Win32``; the logic around it
(busy pipes, errors, the SID check) talks to it through ``api()``, which the
unit tests replace with a fake (no Windows CPython runs in CI)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Optional

from ._errors import UntrustedAgent

PIPE_PREFIX = "\\\\.\\pipe\\"

ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_PIPE_BUSY = 231


def is_pipe(path: str) -> bool:
    return path.lower().startswith(PIPE_PREFIX)


class Unreachable(Exception):
    """Nobody answers on the pipe (none exists, or it stays busy)."""


class _Win32:
    """The few Windows calls the pipe needs, through ctypes. Built on first
    use, so that importing this module anywhere costs nothing."""

    TOKEN_QUERY = 0x0008
    TOKEN_USER = 1  # TOKEN_INFORMATION_CLASS TokenUser
    PROCESS_QUERY_LIMITED_INFORMATION = 0x1000

    def __init__(self) -> None:
        import ctypes
        from ctypes import wintypes

        self._ctypes = ctypes
        # Private WinDLL objects: the argtypes set here must not clash with
        # another library's use of ctypes.windll.
        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        adv = ctypes.WinDLL("advapi32", use_last_error=True)
        HANDLE, DWORD, BOOL = wintypes.HANDLE, wintypes.DWORD, wintypes.BOOL
        k32.GetCurrentProcess.argtypes, k32.GetCurrentProcess.restype = [], HANDLE
        k32.OpenProcess.argtypes, k32.OpenProcess.restype = [DWORD, BOOL, DWORD], HANDLE
        k32.CloseHandle.argtypes, k32.CloseHandle.restype = [HANDLE], BOOL
        k32.LocalFree.argtypes, k32.LocalFree.restype = [ctypes.c_void_p], ctypes.c_void_p
        k32.GetNamedPipeServerProcessId.argtypes = [HANDLE, ctypes.POINTER(wintypes.ULONG)]
        k32.GetNamedPipeServerProcessId.restype = BOOL
        adv.OpenProcessToken.argtypes = [HANDLE, DWORD, ctypes.POINTER(HANDLE)]
        adv.OpenProcessToken.restype = BOOL
        adv.GetTokenInformation.argtypes = [HANDLE, ctypes.c_int, ctypes.c_void_p, DWORD, ctypes.POINTER(DWORD)]
        adv.GetTokenInformation.restype = BOOL
        adv.ConvertSidToStringSidW.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
        adv.ConvertSidToStringSidW.restype = BOOL
        self._k32, self._adv, self._wt = k32, adv, wintypes

    def _error(self, what: str) -> OSError:
        err = self._ctypes.get_last_error()
        e = self._ctypes.WinError(err)
        e.strerror = f"{what}: {e.strerror}"
        return e

    def _process_sid(self, process) -> str:
        ctypes, wt = self._ctypes, self._wt
        token = wt.HANDLE()
        if not self._adv.OpenProcessToken(process, self.TOKEN_QUERY, ctypes.byref(token)):
            raise self._error("OpenProcessToken")
        try:
            size = wt.DWORD()
            self._adv.GetTokenInformation(token, self.TOKEN_USER, None, 0, ctypes.byref(size))
            if not size.value:
                raise self._error("GetTokenInformation")
            buf = ctypes.create_string_buffer(size.value)
            if not self._adv.GetTokenInformation(token, self.TOKEN_USER, buf, size, ctypes.byref(size)):
                raise self._error("GetTokenInformation")
            # TOKEN_USER starts with SID_AND_ATTRIBUTES, which starts with PSID.
            psid = ctypes.cast(buf, ctypes.POINTER(ctypes.c_void_p))[0]
            text = ctypes.c_void_p()
            if not self._adv.ConvertSidToStringSidW(psid, ctypes.byref(text)):
                raise self._error("ConvertSidToStringSidW")
            try:
                return ctypes.wstring_at(text.value)
            finally:
                self._k32.LocalFree(text)
        finally:
            self._k32.CloseHandle(token)

    def current_sid(self) -> str:
        return self._process_sid(self._k32.GetCurrentProcess())

    SECURITY_SQOS_PRESENT = 0x00100000
    SECURITY_ANONYMOUS = 0

    def open(self, path: str):
        import _winapi
        import msvcrt
        import os

        handle = _winapi.CreateFile(
            path,
            _winapi.GENERIC_READ | _winapi.GENERIC_WRITE,
            0,
            _winapi.NULL,
            _winapi.OPEN_EXISTING,
            self.SECURITY_SQOS_PRESENT | self.SECURITY_ANONYMOUS,
            _winapi.NULL,
        )
        try:
            fd = msvcrt.open_osfhandle(handle, os.O_RDWR | getattr(os, "O_BINARY", 0))
        except BaseException:
            _winapi.CloseHandle(handle)
            raise
        return open(fd, "r+b", buffering=0)

    def wait(self, path: str, timeout_ms: float) -> bool:
        import _winapi

        try:
            _winapi.WaitNamedPipe(path, max(1, int(timeout_ms)))
        except OSError:
            return False
        return True

    def server_sid(self, pipe) -> str:
        import msvcrt

        ctypes, wt = self._ctypes, self._wt
        handle = msvcrt.get_osfhandle(pipe.fileno())
        pid = wt.ULONG()
        if not self._k32.GetNamedPipeServerProcessId(handle, ctypes.byref(pid)):
            raise self._error("GetNamedPipeServerProcessId")
        return self.process_sid(pid.value)

    def process_sid(self, pid: int) -> str:
        """The user SID of process pid (the pipe's server, a socket's owner)."""
        process = self._k32.OpenProcess(self.PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not process:
            raise self._error(f"OpenProcess({pid})")
        try:
            return self._process_sid(process)
        finally:
            self._k32.CloseHandle(process)


_api: Optional[object] = None


def api():
    """The Windows calls; tests set ``_api`` to a fake."""
    global _api
    if _api is None:
        _api = _Win32()
    return _api


def current_sid() -> str:
    return api().current_sid()


def _untrusted_hint(path: str) -> str:
    return (
        f"do not use this agent: another account may be impersonating kc-agent on {path}; "
        "stop the process that serves it, or ask an administrator"
    )


class PipeSocket:
    """Just enough of a socket for the client's exchange (http.client over
    _client._DeadlineSocket) on an open pipe.

    A pipe opened as a file has no timeouts, so a read with a timeout runs
    in a helper thread and the caller waits for it only as long as the
    timeout allows (a hung agent must not hold a notebook forever). The
    pipe is never closed under a read still in flight (the C runtime would
    make the close wait for it): the helper closes it when its read ends."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self._timeout: Optional[float] = None
        self._lock = threading.Lock()
        self._reading = False
        self._close_after_read = False

    def settimeout(self, timeout: Optional[float]) -> None:
        self._timeout = timeout

    def sendall(self, data) -> None:
        view = memoryview(data)
        while view:
            n = self._raw.write(view)
            if not n:
                raise OSError("the agent's pipe took no data")
            view = view[n:]

    def recv_into(self, buf) -> int:
        if self._timeout is None:
            return self._raw.readinto(buf)
        got = bytearray(len(buf))
        result: list = []
        done = threading.Event()

        def read() -> None:
            try:
                result.append(self._raw.readinto(got))
            except BaseException as e:  # handed to the caller
                result.append(e)
            with self._lock:
                self._reading = False
                late_close = self._close_after_read
            done.set()
            if late_close:
                self._raw.close()

        with self._lock:
            self._reading = True
        threading.Thread(target=read, name="kc-agent-pipe-read", daemon=True).start()
        if not done.wait(self._timeout):
            raise socket.timeout("the agent's pipe did not answer in time")
        if isinstance(result[0], BaseException):
            raise result[0]
        n = result[0] or 0
        buf[:n] = got[:n]
        return n

    def close(self) -> None:
        with self._lock:
            if self._reading:
                self._close_after_read = True
                return
        self._raw.close()


def connect_verified(path: str, timeout: float) -> PipeSocket:
    """Opens the pipe at path and checks that the process serving it runs as
    this user, before a byte is sent. Raises Unreachable when nobody
    answers, UntrustedAgent when someone else serves (or holds) the pipe."""
    w = api()
    deadline = time.monotonic() + timeout
    while True:
        try:
            raw = w.open(path)
            break
        except FileNotFoundError as e:
            raise Unreachable(f"nobody answers at {path}") from e
        except OSError as e:
            code = getattr(e, "winerror", None)
            if code == ERROR_ACCESS_DENIED or isinstance(e, PermissionError):
                # The agent's pipe admits its user; one that shuts the user
                # out was made by someone else.
                raise UntrustedAgent(
                    f"the pipe {path} exists but refuses you: another account holds it", hint=_untrusted_hint(path)
                ) from None
            left = deadline - time.monotonic()
            if code != ERROR_PIPE_BUSY or left <= 0:
                raise Unreachable(f"can not open {path}: {e.strerror or e}") from e
            w.wait(path, left * 1000)
    try:
        try:
            theirs = w.server_sid(raw)
        except OSError as e:
            raise UntrustedAgent(f"can not tell who serves {path}: {e.strerror or e}", hint=_untrusted_hint(path)) from None
        mine = w.current_sid()
        if theirs != mine:
            raise UntrustedAgent(
                f"the process serving {path} runs as {theirs}, not as you ({mine})", hint=_untrusted_hint(path)
            )
        return PipeSocket(raw)
    except BaseException:
        raw.close()
        raise
