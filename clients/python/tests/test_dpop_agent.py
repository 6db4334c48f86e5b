"""The agent side of DPoP in the Python client: older agents (no
/v1/proof) and no agent on a socket, a bound login whose key is gone,
get_token() and a DPoP-bound token, and no token or proof in any error or
repr."""

from __future__ import annotations

import json
import os
import shutil

import pytest

import kc_agent_client as kc
from kc_agent_client import _cli, _discovery, _proof

from conftest import FRESH, TOKEN, FakeAgent, private_dir

requests = pytest.importorskip("requests")
httpx = pytest.importorskip("httpx")

from test_dpop import DPoPAPI, asked, leaks  # noqa: E402


@pytest.fixture
def api():
    a = DPoPAPI()
    yield a
    a.close()


@pytest.mark.parametrize("code", ["no_such_endpoint", "bad_request"])
def test_an_older_agent_gets_bearer_from_v1_token(agent, api, code):
    agent.proof_endpoint = False
    agent.old_code = code
    api.bearer = True
    with kc.session() as s:
        assert s.get(api.url + "/old").status_code == 200
    with kc.httpx_client() as c:
        assert c.get(api.url + "/old").status_code == 200
    assert [a for _, _, a, _, _ in api.seen] == [f"Bearer {TOKEN}"] * 2
    assert len(agent.proof_requests()) == 2 and len(agent.token_requests()) == 2
    # No /v1/health round trip per request to tell the version.
    assert [p for _, p, _, _ in agent.requests if p == "/v1/health"] == []


def test_an_older_agent_retries_a_401_with_a_fresh_bearer_token(agent, api):
    agent.proof_endpoint = False
    api.bearer = True
    api.accept = FRESH
    with kc.session() as s:
        assert s.get(api.url + "/old").status_code == 200
    assert [bool(b.get("force_refresh")) for _, _, _, b in agent.token_requests()] == [False, True]


def test_an_older_agent_serving_a_bound_token_is_not_sent(agent, api):
    # An agent with dpop: on but without /v1/proof: its token is of no use
    # as Bearer, and nothing goes to the API.
    agent.proof_endpoint = False
    agent.token_answer = (200, dict(agent.token_answer[1], token_type="DPoP"))
    with pytest.raises(kc.KcAgentError, match="can not sign proofs for them: it is older") as e:
        with kc.session() as s:
            s.get(api.url + "/x")
    assert e.value.code == "agent_too_old" and "kc-agent service restart" in e.value.hint
    assert api.seen == [] and leaks(str(e.value) + repr(e.value), agent) == []


def test_no_agent_on_a_socket_the_cli_starts_one_that_signs(monkeypatch, api):
    # Nobody listens yet: the kc-agent command starts the agent (here: the
    # fake one appears), and the proof comes from its socket.
    d = private_dir()
    path = os.path.join(d, "agent.sock")
    monkeypatch.setenv("KC_AGENT_SOCK", path)
    started = []

    def start(profile, na):
        a = FakeAgent(path)
        a.dpop = True
        started.append((profile, a))

    monkeypatch.setattr(_cli, "start_agent", start)
    try:
        with kc.session() as s:
            assert s.get(api.url + "/started").status_code == 200
        (profile, a), = started
        assert profile == "default" and asked(a) == [("GET", api.url + "/started", "", False)]
    finally:
        for _, a in started:
            a.close()
        shutil.rmtree(d, ignore_errors=True)


def test_without_sockets_the_cli_token_is_used_as_bearer(monkeypatch, fake_cli, api):
    monkeypatch.setattr(_discovery, "can_connect", lambda: False)
    api.bearer = True
    with kc.session() as s:
        assert s.get(api.url + "/cli").status_code == 200
    assert [c[:3] for c in fake_cli.calls()] == [["token", "--format", "json"]]
    # A bound token from the command can not be used: refused, not sent.
    fake_cli.configure(0, json.dumps({"access_token": TOKEN, "token_type": "DPoP", "expires_at": "2030-01-02T03:04:05Z", "expires_in": 300}))
    with pytest.raises(kc.KcAgentError, match="no agent answers on a socket") as e:
        with kc.session() as s:
            s.get(api.url + "/cli")
    assert e.value.code == "unreachable" and "kc-agent run" in e.value.hint
    assert len(api.seen) == 1


KEY_GONE = (
    401,
    {
        "error": "login_required",
        "message": 'the login of profile "default" is bound to a DPoP key that is missing from the keychain (restored from a backup without it?), and can\'t be refreshed without it',
        "hint": "run `kc-agent login` to sign in again",
    },
)


def test_a_bound_login_without_its_key_raises_login_required(agent, api):
    agent.token_answer = KEY_GONE
    with pytest.raises(kc.LoginRequired, match="DPoP key that is missing"):
        with kc.session() as s:
            s.get(api.url + "/x")
    with pytest.raises(kc.LoginRequired):
        with kc.httpx_client() as c:
            c.get(api.url + "/x")
    with pytest.raises(kc.LoginRequired, match="DPoP key that is missing"):
        kc.get_token()
    # Asked once per call: no loop of attempts, and nothing reached the API.
    assert len(agent.proof_requests()) == 2 and len(agent.token_requests()) == 1 and api.seen == []


def test_get_token_refuses_a_bound_token_and_get_token_info_names_it(agent):
    agent.token_answer = (200, dict(agent.token_answer[1], token_type="DPoP"))
    with pytest.raises(kc.KcAgentError, match="DPoP-bound") as e:
        kc.get_token()
    assert e.value.code == "dpop_bound" and "KcAgentAuth" in e.value.hint
    assert leaks(str(e.value) + repr(e.value), agent) == []
    info = kc.get_token_info()
    assert info.token_type == "DPoP" and TOKEN not in repr(info)


def test_proofs_and_tokens_stay_out_of_reprs_and_errors(agent, api):
    agent.dpop = True
    p = _proof.fetch(None, None, None, "GET", api.url + "/", "")
    assert p.proof in agent.proofs
    assert leaks(repr(p) + str(p), agent) == []
    auth = kc.KcAgentAuth()
    with kc.session() as s:
        s.get(api.url + "/", auth=auth)
    assert leaks(repr(auth) + str(vars(auth)), agent) == []
    # A malformed proof is refused, and the error names neither it nor the token.
    agent.dpop = False
    agent.token_answer = (200, dict(agent.token_answer[1], token_type="DPoP", proof=f"{TOKEN} x"))
    with pytest.raises(kc.KcAgentError, match="without a usable proof") as e:
        with kc.session() as s:
            s.get(api.url + "/")
    assert leaks(str(e.value) + repr(e.value), agent) == [] and TOKEN not in str(e.value)
    # An agent error that quotes a proof or token has it cut out.
    agent.token_answer = (500, {"error": "internal", "message": f"signing failed for {agent.proofs[0]} and {TOKEN}"})
    with pytest.raises(kc.KcAgentError) as e:
        with kc.httpx_client() as c:
            c.get(api.url + "/")
    assert leaks(str(e.value) + repr(e.value), agent) == []
