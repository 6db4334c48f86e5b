"""Who owns the other end of a local TCP connection: the Python twin of the
Go package internal/tcpowner. Linux answers from /proc/net/tcp and tcp6
(a uid); Windows from the owner-PID TCP tables (a process, then its user's
SID). Other systems can not tell (Unsupported).

A socket may appear in either table: an AF_INET6 socket talking IPv4 shows
``::ffff:a.b.c.d`` in tcp6, an AF_INET one ``a.b.c.d`` in tcp. Every
lookup tries both spellings in both tables."""

from __future__ import annotations

import ipaddress
import struct
import sys
from typing import Iterator, List, Optional, Tuple, Union

Addr = Tuple[str, int]  # (ip, port), as getsockname/getpeername give them
Owner = Union[int, str]  # a uid on Linux, a user SID on Windows


class Unsupported(Exception):
    """This system does not show who owns a socket."""


class NoOwner(Exception):
    """The socket exists but its owner can not be told (Windows: no owning
    process, or one that can not be opened)."""


_LISTEN_LINUX = "0A"
_LISTEN_WINDOWS = 2  # MIB_TCP_STATE_LISTEN


def unmapped(ip: str) -> str:
    """``::ffff:a.b.c.d`` -> ``a.b.c.d``; any other address unchanged (a
    zone index, ``%eth0``, dropped)."""
    a = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        return str(a.ipv4_mapped)
    return str(a)


def _spellings(ip: str) -> List[Tuple[bytes, bool]]:
    """The packed forms of ip a table may hold: (bytes, is_v6)."""
    a = ipaddress.ip_address(unmapped(ip))
    if a.version == 4:
        return [(a.packed, False), (ipaddress.IPv6Address("::ffff:" + str(a)).packed, True)]
    return [(a.packed, True)]


# --- Linux ------------------------------------------------------------------


def _proc_hex(packed: bytes, port: int) -> str:
    # The kernel prints each 32-bit word of the address as a native integer.
    words = "".join("%08X" % int.from_bytes(packed[i : i + 4], sys.byteorder) for i in range(0, len(packed), 4))
    return f"{words}:{port:04X}"


def _proc_rows(six: bool) -> Iterator[List[str]]:
    try:
        with open("/proc/net/tcp6" if six else "/proc/net/tcp") as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) >= 8:
                    yield fields
    except OSError:
        return


def _linux_find(local: Addr, remote: Optional[Addr]) -> Optional[int]:
    rspell = dict((six, p) for p, six in _spellings(remote[0])) if remote else {}
    for packed, six in _spellings(local[0]):
        want_local = _proc_hex(packed, local[1])
        want_remote = _proc_hex(rspell[six], remote[1]) if remote and six in rspell else None
        if remote and want_remote is None:
            continue
        for f in _proc_rows(six):
            if f[1].upper() != want_local:
                continue
            if remote is None and f[3] == _LISTEN_LINUX:
                return int(f[7])
            if remote is not None and f[3] != _LISTEN_LINUX and f[2].upper() == want_remote:
                return int(f[7])
    return None


# --- Windows ----------------------------------------------------------------


def parse_table(buf: bytes, six: bool) -> List[Tuple[Addr, Addr, int, int]]:
    """MIB_TCPTABLE_OWNER_PID / MIB_TCP6TABLE_OWNER_PID -> rows of (local,
    remote, state, pid). Ports sit in network order in the low 16 bits of
    their DWORD; everything else is little-endian."""
    if len(buf) < 4:
        raise ValueError("short TCP table")
    (n,) = struct.unpack_from("<I", buf)
    size = 56 if six else 24
    if 4 + n * size > len(buf):
        raise ValueError(f"{n} rows do not fit in {len(buf)} bytes")
    rows = []
    for i in range(n):
        r = buf[4 + i * size : 4 + (i + 1) * size]
        if six:
            local = (str(ipaddress.IPv6Address(r[0:16])), struct.unpack(">H", r[20:22])[0])
            remote = (str(ipaddress.IPv6Address(r[24:40])), struct.unpack(">H", r[44:46])[0])
            state, pid = struct.unpack_from("<II", r, 48)
        else:
            state = struct.unpack_from("<I", r, 0)[0]
            local = (str(ipaddress.IPv4Address(r[4:8])), struct.unpack(">H", r[8:10])[0])
            remote = (str(ipaddress.IPv4Address(r[12:16])), struct.unpack(">H", r[16:18])[0])
            pid = struct.unpack_from("<I", r, 20)[0]
        rows.append((local, remote, state, pid))
    return rows


def _windows_table(six: bool) -> List[Tuple[Addr, Addr, int, int]]:
    import ctypes

    try:
        fn = ctypes.WinDLL("iphlpapi").GetExtendedTcpTable
    except (OSError, AttributeError) as e:
        raise Unsupported(f"GetExtendedTcpTable: {e}") from None
    fn.restype = ctypes.c_ulong
    size = ctypes.c_ulong(16 << 10)
    for _ in range(8):
        buf = ctypes.create_string_buffer(size.value)
        # TCP_TABLE_OWNER_PID_ALL = 5; AF_INET = 2, AF_INET6 = 23.
        r = fn(buf, ctypes.byref(size), False, 23 if six else 2, 5, 0)
        if r == 0:
            return parse_table(buf.raw[: size.value], six)
        if r != 122:  # ERROR_INSUFFICIENT_BUFFER: the table grew
            raise OSError(f"GetExtendedTcpTable failed with error {r}")
        size = ctypes.c_ulong(size.value + (4 << 10))
    raise OSError("GetExtendedTcpTable: the table keeps growing")


def _same(a: Addr, b: Addr) -> bool:
    return a[1] == b[1] and unmapped(a[0]) == unmapped(b[0])


def _windows_find(local: Addr, remote: Optional[Addr], table=_windows_table) -> Optional[str]:
    from . import _winpipe

    v4 = ipaddress.ip_address(unmapped(local[0])).version == 4
    for six in ([False, True] if v4 else [True]):
        for row_local, row_remote, state, pid in table(six):
            if not _same(row_local, local):
                continue
            if (remote is None) != (state == _LISTEN_WINDOWS):
                continue
            if remote is not None and not _same(row_remote, remote):
                continue
            if pid == 0:
                raise NoOwner(f"the socket {local[0]}:{local[1]} has no owning process")
            try:
                return _winpipe.api().process_sid(pid)
            except OSError as e:
                raise NoOwner(f"can not open process {pid}: {e}") from None
    return None


# --- both -------------------------------------------------------------------


def connection_owner(local: Addr, remote: Addr) -> Optional[Owner]:
    """The owner of the socket whose local address is ``local`` and whose
    remote address is ``remote`` (for a connection we made: local is our
    peer, remote our own address); None when there is no such socket."""
    if sys.platform.startswith("linux"):
        return _linux_find(local, remote)
    if sys.platform.startswith("win"):
        return _windows_find(local, remote)
    raise Unsupported(f"socket owners are not visible on {sys.platform}")


def listener_owner(addr: Addr) -> Optional[Owner]:
    """The owner of the socket listening on addr, or on the wildcard address
    of its port (it receives that traffic too); None when nobody listens."""
    find = _linux_find if sys.platform.startswith("linux") else _windows_find if sys.platform.startswith("win") else None
    if find is None:
        raise Unsupported(f"socket owners are not visible on {sys.platform}")
    for a in (addr, ("0.0.0.0", addr[1]), ("::", addr[1])):
        o = find(a, None)
        if o is not None:
            return o
    return None


def me() -> Owner:
    if sys.platform.startswith("win"):
        from . import _winpipe

        return _winpipe.current_sid()
    import os

    return os.getuid()


def is_superuser(o: Owner) -> bool:
    return o == 0 or o == "S-1-5-18"  # root, LocalSystem
