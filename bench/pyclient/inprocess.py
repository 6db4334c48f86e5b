"""Times get_token() in one Python process against a warm agent and prints
the percentiles as JSON. Run by bench/pyclient (Go), which compares them
with whole-process `kc-agent token` and oidc-token in the same run."""

import json
import sys
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
t0 = time.perf_counter()
from kc_agent_client import get_token  # noqa: E402

import_s = time.perf_counter() - t0
get_token()  # warm: the agent has a token cached
times = []
for _ in range(n):
    start = time.perf_counter()
    tok = get_token()
    times.append(time.perf_counter() - start)
    if not tok:
        sys.exit("empty token")
times.sort()


def pct(p):
    return times[(len(times) - 1) * p // 100] * 1000


print(json.dumps({"n": n, "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99), "import_ms": import_s * 1000}))
