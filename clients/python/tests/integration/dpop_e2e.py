"""KcAgentAuth against a DPoP-verifying API (internal/testenv/dpopapi)
under a `dpop: on` profile, with requests and httpx (sync and async): a
proof the agent signs per request, the API's one nonce challenge answered,
its nonce kept for the rest. Run by cmd/kc-agent/python_dpop_test.go with
DPOP_API (the API's base URL); it prints what it saw, never a token."""

import asyncio
import os

import kc_agent_client as kc

API = os.environ["DPOP_API"]


def show(lib, r):
    doc = r.json() if r.status_code == 200 else {}
    print(lib, r.request.method, r.status_code, doc.get("user"), doc.get("scheme"), "history", [h.status_code for h in r.history])


with kc.session() as s:
    # The first request meets the API's nonce challenge: one retry.
    show("requests", s.get(API + "/v1/tables?limit=3"))
    for i in range(5):
        show("requests", s.post(API + f"/v1/rows/{i}", json={"row": i}))

with kc.httpx_client() as c:
    for i in range(3):
        show("httpx", c.put(API + f"/v1/rows/{i}", content=b"x" * i))


async def main():
    async with kc.httpx_client(asynchronous=True) as c:
        rs = await asyncio.gather(*(c.get(API + f"/v1/async/{i}") for i in range(4)))
    for r in rs:
        show("httpx-async", r)


asyncio.run(main())

try:
    kc.get_token()
    raise SystemExit("get_token() handed out a DPoP-bound token")
except kc.KcAgentError as e:
    print("get_token refused:", e.code, e)
info = kc.get_token_info()
print("get_token_info:", repr(info), "auth:", repr(kc.KcAgentAuth()))
print("done")
