"""Where the agent's socket is, and how a client checks that what answers
there is the user's own agent.

The order is the Go CLI's (ipc/paths.go), tested against the same vectors
(ipc/discovery/testdata/discovery.json):

1. ``$KC_AGENT_SOCK`` when set: that path and nothing else.
2. Linux and the BSDs: ``/run/user/<uid>/kc-agent/agent.sock`` when
   ``/run/user/<uid>`` is a directory owned by the user, then
   ``/tmp/kc-agent-<uid>/agent.sock``.
   macOS: ``$HOME/Library/Caches/kc-agent/agent.sock``, then
   ``/tmp/kc-agent-<uid>/agent.sock``.
   Windows: the named pipe ``\\\\.\\pipe\\kc-agent-<user SID>``.

Nothing depends on ``XDG_RUNTIME_DIR`` or ``TMPDIR``: kernels started by a
launcher often lack them, and a client that computed another path than the
agent would not find it.
"""

from __future__ import annotations

import os
import posixpath
import socket
import stat
import struct
import sys
from typing import List, Mapping, Optional

from ._errors import UntrustedAgent

HAVE_AF_UNIX = hasattr(socket, "AF_UNIX")


def _goos() -> str:
    p = sys.platform
    if p.startswith("win"):
        return "windows"
    if p == "darwin":
        return "darwin"
    if p.startswith("linux"):
        return "linux"
    return p.rstrip("0123456789")  # freebsd13 -> freebsd


PIPE_PREFIX = "\\\\.\\pipe\\"


def candidates_for(env: Mapping) -> List[str]:
    """The socket paths for ``env``, in probing order. ``env`` holds what
    discovery looks at, with the keys of the shared test vectors: ``goos``,
    ``uid``, ``sid`` (Windows), ``KC_AGENT_SOCK``, ``HOME``,
    ``LOCALAPPDATA`` and ``run_user_dir`` ("owned", "foreign" or absent)."""
    sock = env.get("KC_AGENT_SOCK") or ""
    if sock:
        return [sock]
    uid = env.get("uid")
    home = env.get("HOME") or ""
    uid_tmp = f"/tmp/kc-agent-{uid}/agent.sock"
    goos = env.get("goos")
    if goos == "windows":
        sid = env.get("sid") or ""
        return [PIPE_PREFIX + "kc-agent-" + sid] if sid else []
    if goos == "darwin":
        out = []
        if home.startswith("/"):
            out.append(posixpath.normpath(posixpath.join(home, "Library", "Caches", "kc-agent", "agent.sock")))
        return out + [uid_tmp]
    out = []
    if env.get("run_user_dir") == "owned":
        out.append(f"/run/user/{uid}/kc-agent/agent.sock")
    return out + [uid_tmp]


def current_env() -> dict:
    """The discovery inputs of this process."""
    goos = _goos()
    uid = os.getuid() if hasattr(os, "getuid") else -1
    env = {"goos": goos, "uid": uid, "HOME": os.environ.get("HOME", ""), "LOCALAPPDATA": os.environ.get("LOCALAPPDATA", "")}
    sock = os.environ.get("KC_AGENT_SOCK", "")
    if sock:
        env["KC_AGENT_SOCK"] = os.path.abspath(sock)
    if goos == "windows" and not env["HOME"]:
        env["HOME"] = os.environ.get("USERPROFILE", "")
    if goos != "windows":
        try:
            st = os.stat(f"/run/user/{uid}")
        except OSError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            env["run_user_dir"] = "owned" if st.st_uid == uid else "foreign"
    return env


def candidates() -> List[str]:
    """This process's socket paths, in probing order."""
    return candidates_for(current_env())


class Unreachable(Exception):
    """Nobody answers at a path (no directory, no socket, refused). Internal:
    the caller probes the next candidate."""


def check_socket_dir(path: str) -> None:
    """The socket's directory must be the user's own and closed to everyone
    else (0700): a socket in a directory others can enter could be swapped."""
    d = os.path.dirname(path)
    try:
        st = os.lstat(d)
    except FileNotFoundError as e:
        raise Unreachable(f"no directory {d}") from e
    except OSError as e:
        raise Unreachable(f"can not stat {d}: {e.strerror}") from e
    if not stat.S_ISDIR(st.st_mode):
        raise UntrustedAgent(f"socket directory {d} is not a directory", hint=_untrusted_hint(d))
    if _goos() == "windows":
        return
    me = os.getuid()
    if st.st_uid != me:
        raise UntrustedAgent(
            f"socket directory {d} belongs to uid {st.st_uid}, not to you (uid {me})", hint=_untrusted_hint(d)
        )
    if st.st_mode & 0o077:
        raise UntrustedAgent(
            f"socket directory {d} has mode {stat.S_IMODE(st.st_mode):04o}; it must be 0700", hint=_untrusted_hint(d)
        )


def _untrusted_hint(path: str) -> str:
    return (
        f"do not use this agent; check who created {path} (another user may be impersonating kc-agent), "
        "remove it, or set KC_AGENT_SOCK to a path in a private directory"
    )


def peer_uid(sock: socket.socket) -> Optional[int]:
    """The uid of the process serving the socket, or None where the OS does
    not tell."""
    if sys.platform.startswith("linux"):  # struct ucred {pid, uid, gid}
        data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", data)
        return uid
    if sys.platform == "darwin" or sys.platform.startswith("freebsd"):
        # getsockopt(SOL_LOCAL=0, LOCAL_PEERCRED=1): struct xucred
        # {u_int cr_version; uid_t cr_uid; short cr_ngroups; gid_t cr_groups[16]}.
        local_peercred = getattr(socket, "LOCAL_PEERCRED", 1)
        data = sock.getsockopt(0, local_peercred, 4 + 4 + 4 + 16 * 4)
        _version, uid = struct.unpack_from("Ii", data)
        return uid
    return None


def connect_verified(path: str, timeout: float) -> socket.socket:
    """Connects to the socket at path after checking its directory, then
    checks that the process answering runs as this user. Raises Unreachable
    when nobody answers, UntrustedAgent when the place or the peer is
    someone else's."""
    check_socket_dir(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        try:
            s.connect(path)
        except (FileNotFoundError, ConnectionRefusedError, socket.timeout) as e:
            raise Unreachable(f"nobody answers at {path}: {e}") from e
        except OSError as e:
            raise Unreachable(f"can not connect to {path}: {e.strerror or e}") from e
        try:
            uid = peer_uid(s)
        except OSError as e:
            raise UntrustedAgent(f"can not tell who serves {path}: {e}", hint=_untrusted_hint(path)) from None
        if uid is None:
            raise UntrustedAgent(
                f"can not tell who serves {path}: no peer credentials on {sys.platform}", hint=_untrusted_hint(path)
            )
        if uid != os.getuid():
            raise UntrustedAgent(
                f"the process serving {path} runs as uid {uid}, not as you (uid {os.getuid()})",
                hint=_untrusted_hint(path),
            )
        return s
    except BaseException:
        s.close()
        raise
