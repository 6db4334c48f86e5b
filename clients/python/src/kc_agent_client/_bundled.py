"""The kc-agent binary a platform wheel installs beside the interpreter's
scripts, and only when it can be trusted.

Whoever can write that binary, or a directory above it, chooses what runs
as this user the next time a notebook needs an agent: on a shared host a
group-writable conda environment is enough. And whoever can put a
``kc_agent_client-*.dist-info`` earlier on ``sys.path`` (a notebook's
working directory is ``sys.path[0]``) chooses which RECORD names the
binary. So:

- only the dist-info beside this package's own directory counts;
- the binary its RECORD names must sit in the environment's scripts
  directory (the install scheme whose library directory holds this
  package);
- the binary, the RECORD, and every directory from them up to the
  environment's root belong to this user or root and are not writable by
  group or others.

A refusal raises UntrustedAgent naming the file and the fix."""

from __future__ import annotations

import csv
import glob
import os
import stat
import sys
import sysconfig
from typing import List, Optional, Tuple

from ._errors import UntrustedAgent

_PACKAGE = "kc_agent_client"


def _exe() -> str:
    return "kc-agent.exe" if sys.platform.startswith("win") else "kc-agent"


def _environment(site: str) -> Optional[Tuple[str, str]]:
    """(scripts directory, root) of the install scheme whose library
    directory is site; None when no scheme of this interpreter has it."""
    for scheme in sysconfig.get_scheme_names():
        try:
            paths = sysconfig.get_paths(scheme)
        except (KeyError, ValueError):
            continue
        libs = {os.path.realpath(paths[k]) for k in ("purelib", "platlib") if paths.get(k)}
        if site in libs and paths.get("scripts") and paths.get("data"):
            return os.path.realpath(paths["scripts"]), os.path.realpath(paths["data"])
    return None


def _record_rows(info: str) -> List[str]:
    with open(os.path.join(info, "RECORD"), newline="", encoding="utf-8") as f:
        return [row[0] for row in csv.reader(f) if row]


def _check_owner_and_mode(path: str) -> None:
    if sys.platform.startswith("win"):
        return  # Windows: see the README's security model (ACLs not yet checked here)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise UntrustedAgent(
            f"refusing to run the kc-agent that came with kc-agent-client: {path} is a symbolic link",
            hint="reinstall kc-agent-client (pip install --force-reinstall kc-agent-client)",
        )
    if st.st_uid not in (os.getuid(), 0):
        raise UntrustedAgent(
            f"refusing to run the kc-agent that came with kc-agent-client: {path} belongs to uid {st.st_uid}, not to you (uid {os.getuid()}) or root",
            hint="install kc-agent-client into an environment you (or root) own, or have its owner reinstall it as root",
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UntrustedAgent(
            f"refusing to run the kc-agent that came with kc-agent-client: {path} is writable by "
            f"{'group and others' if st.st_mode & stat.S_IWOTH and st.st_mode & stat.S_IWGRP else 'others' if st.st_mode & stat.S_IWOTH else 'its group'} "
            f"(mode {stat.S_IMODE(st.st_mode):04o}), who could replace what runs as you",
            hint=f"chmod go-w {path} (a shared environment: owned by root, writable only by root), or reinstall kc-agent-client in your own environment",
        )


def _check_chain(path: str, root: str) -> None:
    """path and every directory above it, up to and including root."""
    _check_owner_and_mode(path)
    d = os.path.dirname(path)
    while True:
        _check_owner_and_mode(d)
        if d == root or os.path.dirname(d) == d:
            return
        d = os.path.dirname(d)


def bundled_cli() -> Optional[str]:
    """The kc-agent this package's wheel installed, checked; None when this
    installation brought none (a source checkout, the pure wheel). Raises
    UntrustedAgent when it exists but can't be trusted."""
    pkg = os.path.dirname(os.path.realpath(__file__))
    site = os.path.dirname(pkg)
    infos = sorted(glob.glob(os.path.join(site, glob.escape(_PACKAGE) + "-*.dist-info")))
    if not infos:
        return None
    env = _environment(site)
    if env is None:
        return None  # not an install scheme of this interpreter: nothing of ours to run
    scripts, root = env
    for info in infos:
        try:
            rows = _record_rows(info)
        except OSError:
            continue
        if not any(r.replace("\\", "/") == f"{_PACKAGE}/_client.py" for r in rows):
            continue  # another installation's leftovers: not the one we run from
        for r in rows:
            if os.path.basename(r.replace("\\", "/")) != _exe():
                continue
            cand = os.path.normpath(os.path.join(site, r))
            if os.path.dirname(cand) != scripts and os.path.dirname(os.path.realpath(cand)) != scripts:
                raise UntrustedAgent(
                    f"refusing to run {cand}: the RECORD of {info} names it, and it is outside this environment's scripts directory {scripts}",
                    hint="reinstall kc-agent-client (pip install --force-reinstall kc-agent-client)",
                )
            if not os.path.isfile(cand):
                return None
            _check_chain(os.path.join(info, "RECORD"), root)
            _check_chain(cand, root)
            return cand
    return None
