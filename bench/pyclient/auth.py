"""Times KcAgentAuth's per-request work in one Python process against a
warm agent: the headers for one request, i.e. the /v1/proof round trip
(for a dpop: on profile, the agent signs a proof in it). Two profiles in
the same loop, alternating: ON (DPoP-bound login) and OFF (Bearer), with
requests (auth(prepared)) and httpx (the auth flow's first step). No
request leaves the process. Prints the percentiles as JSON; run by
bench/pyclient (Go)."""

import json
import sys
import time

import httpx
import requests

from kc_agent_client import KcAgentAuth

n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
profiles = {"on": sys.argv[2], "off": sys.argv[3]}
URL = "https://api.example/v1/tables?limit=3"
SCHEME = {"on": "DPoP ", "off": "Bearer "}


def with_requests(auth):
    p = requests.Request("GET", URL).prepare()
    start = time.perf_counter()
    auth(p)
    took = time.perf_counter() - start
    return took, p.headers


def with_httpx(auth):
    req = httpx.Request("GET", URL)
    flow = auth.sync_auth_flow(req)
    start = time.perf_counter()
    next(flow)
    took = time.perf_counter() - start
    flow.close()
    return took, req.headers


def check(mode, headers):
    # Never print a header: only whether it has the right shape.
    if not headers["Authorization"].startswith(SCHEME[mode]) or (mode == "on") != ("DPoP" in headers):
        sys.exit(f"profile {profiles[mode]!r} ({mode}): the auth set the wrong scheme or proof")


auths = {m: KcAgentAuth(p) for m, p in profiles.items()}
times = {(lib, m): [] for lib in ("requests", "httpx") for m in auths}
for lib, step in (("requests", with_requests), ("httpx", with_httpx)):
    for m, a in auths.items():  # warm: each profile has a token cached
        check(m, step(a)[1])
    for _ in range(n):
        for m, a in auths.items():
            took, headers = step(a)
            times[(lib, m)].append(took)
    for m, a in auths.items():
        check(m, step(a)[1])


def pct(ts, p):
    ts = sorted(ts)
    return ts[(len(ts) - 1) * p // 100] * 1000


print(json.dumps([{"lib": lib, "mode": m, "n": len(ts), "p50_ms": pct(ts, 50), "p95_ms": pct(ts, 95), "p99_ms": pct(ts, 99)} for (lib, m), ts in times.items()]))
