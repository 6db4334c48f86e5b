"""The agent's routes: name -> the local base URL its proxy serves, from
the verified agent (GET /v1/proxy) or, where no agent answers on a
socket, from `kc-agent env`. route_url checks who listens there before
handing the URL out (_connguard.check_listener)."""

from __future__ import annotations

import shlex
from typing import Dict

from . import _cli, _connguard, _transport
from ._errors import KcAgentError


def fetch() -> Dict[str, str]:
    """Route name -> local base URL, from the verified agent (or the CLI)."""
    try:
        _, doc = _transport.request("GET", "/v1/proxy")
    except _transport.NoAgent as na:
        return _routes_via_cli(na)
    if not doc.get("configured"):
        raise KcAgentError("the agent has no proxy: no routes are configured", hint="add routes to the kc-agent config file")
    if not doc.get("running"):
        raise KcAgentError(
            f"the agent's proxy is not running: {doc.get('error') or 'unknown reason'}",
            hint=str(doc.get("hint") or "see `kc-agent status` and `kc-agent doctor`"),
        )
    out = {}
    for r in doc.get("routes") or []:
        if isinstance(r, dict) and r.get("name") and r.get("url"):
            out[str(r["name"])] = str(r["url"])
    return out


def _env_name(route: str) -> str:
    return "".join(c if ("A" <= c <= "Z" or "0" <= c <= "9") else "_" for c in route.upper())


def _routes_via_cli(na: _transport.NoAgent) -> Dict[str, str]:
    out = _cli.run(["env", "--shell", "sh"], na)
    routes = {}
    for line in out.splitlines():
        parts = shlex.split(line)
        if len(parts) == 2 and parts[0] == "export" and parts[1].startswith("KC_AGENT_URL_"):
            k, _, v = parts[1].partition("=")
            routes[k[len("KC_AGENT_URL_"):]] = v  # the env name: route_url matches on it
    return routes


def route_url(name: str) -> str:
    routes = fetch()
    url = routes.get(name)
    if url is None:
        url = next((u for k, u in routes.items() if _env_name(k) == _env_name(name)), None)
    if not url:
        names = sorted(routes)
        raise KcAgentError(
            f"no route named {name!r}" + (f"; the agent has {', '.join(names)}" if names else "; the agent has no routes"),
            hint="add it under routes: in the kc-agent config file",
        )
    _connguard.check_listener(url)
    return url.rstrip("/")
