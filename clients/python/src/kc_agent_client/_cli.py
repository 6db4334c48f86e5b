"""The kc-agent command, for where no agent answers on a socket (this
Python has no Unix sockets, or no agent runs yet): it reaches the agent
its own way and starts one when none runs. Finding the binary (the one a
platform wheel brought first), running it with the allow-listed
environment, and turning its exit code and stderr into the package's
exceptions. Its stdout may hold a token: it never goes into an error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import List, Optional, Tuple

from ._agentenv import agent_environment
from ._answer import loads_answer
from ._errors import START_HINT, AgentUnavailable, KcAgentError, LoginRequired
from ._transport import NoAgent

CLI_TIMEOUT = 90.0


# Where the install script and package managers put kc-agent, looked at
# after PATH: kernels started by a launcher often have a shorter PATH than a
# shell. "~" is the user's home.
CLI_LOCATIONS = ("~/.local/bin", "/usr/local/bin", "/opt/homebrew/bin")


def bundled_cli() -> Optional[str]:
    """The kc-agent that came with this package (a platform wheel installs
    it beside the interpreter's scripts), or None; only one nobody else can
    replace (_bundled): UntrustedAgent otherwise."""
    from . import _bundled

    return _bundled.bundled_cli()


def find_cli() -> Optional[str]:
    """The kc-agent binary: the one this package came with (bundled_cli),
    else on PATH, else in CLI_LOCATIONS. Only absolute PATH entries count: a
    notebook's working directory (a shared or cloned folder) must not be
    able to supply a "kc-agent" whose output is taken for a token (Windows
    searches the current directory first)."""
    own = bundled_cli()
    if own:
        return own
    exe = "kc-agent.exe" if sys.platform.startswith("win") else "kc-agent"
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and os.path.isabs(d)]
    found = shutil.which(exe, path=os.pathsep.join(dirs)) if dirs else None
    if found and os.path.isabs(found):
        return found
    for d in CLI_LOCATIONS:
        cand = os.path.join(os.path.expanduser(d), exe)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def run(args: List[str], na: NoAgent) -> str:
    exe = find_cli()
    where = ", ".join(na.paths) if na.paths else "no socket"
    if exe is None:
        raise AgentUnavailable(f"no kc-agent answers ({where}) and the kc-agent command is not on PATH", hint=START_HINT)
    try:
        # The CLI may autostart the agent: it gets the allow-listed
        # environment, never the kernel's own secrets (_agentenv).
        cp = subprocess.run(
            [exe] + args,
            env=agent_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=CLI_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise AgentUnavailable(f"`kc-agent {args[0]}` did not finish within {CLI_TIMEOUT:.0f}s", hint=START_HINT) from None
    except OSError as e:
        raise AgentUnavailable(f"can not run {exe}: {e.strerror or e}", hint=START_HINT) from None
    if cp.returncode == 0:
        return cp.stdout.decode("utf-8", "replace")
    # stdout may hold a token: only stderr goes into the error.
    msg, hint = _cli_diagnostics(cp.stderr.decode("utf-8", "replace"))
    msg = msg or f"`kc-agent {args[0]}` exited {cp.returncode}"
    if cp.returncode == 4:
        raise LoginRequired(msg, hint=hint, code="login_required")
    if cp.returncode == 3:
        raise AgentUnavailable(msg, hint=hint or START_HINT, code="unreachable")
    raise KcAgentError(msg, hint=hint, code="usage" if cp.returncode == 2 else "cli_error")


def _cli_diagnostics(stderr: str) -> Tuple[str, str]:
    msg, hint = "", ""
    for line in stderr.splitlines():
        if line.startswith("kc-agent: error: ") and not msg:
            msg = line[len("kc-agent: error: "):].strip()
        elif line.startswith("kc-agent: hint: ") and not hint:
            hint = line[len("kc-agent: hint: "):].strip()
    return msg, hint


def json_answer(args: List[str], na: NoAgent) -> dict:
    """Runs `kc-agent <args>` that prints one JSON object (--format json)
    and returns it, read as strictly as the socket's answers."""
    out = run(args, na)
    what = " ".join(["kc-agent"] + args[:1] + ["--format", "json"])
    try:
        doc = loads_answer(out)
    except ValueError:
        raise KcAgentError(f"`{what}` printed something that is not JSON") from None
    if not isinstance(doc, dict):
        raise KcAgentError(f"`{what}` printed something that is not a JSON object")
    return doc


def start_agent(profile: str, na: NoAgent) -> None:
    """Starts the agent the way a user's first command does: `kc-agent
    token` starts one (and here, says the profile needs a login, which is
    why the caller asks). Raises AgentUnavailable when it could not reach
    or start one; any other answer is the caller's to find out from the
    agent itself."""
    try:
        run(["token", "--format", "json", "--profile", profile], na)
    except AgentUnavailable:
        raise
    except KcAgentError:
        pass
