from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import kc_agent_client as kc
from kc_agent_client import _login


def test_logout_asks_the_agent(agent):
    agent.handlers[("POST", "/v1/logout")] = lambda path, body: (200, {"profile": body["profile"], "logged_in": True, "remote": "ended"})
    kc.logout("lab")
    kc.logout("lab", all=True)
    posts = [r[3] for r in agent.requests if r[0] == "POST" and r[1] == "/v1/logout"]
    assert posts == [{"profile": "lab"}, {"profile": "lab", "all": True}]


def test_login_switch_user_goes_on_the_wire(agent, monkeypatch):
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_TTY", "JUPYTERHUB_API_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(_login, "POLL_SECONDS", 0.05)
    exp = (datetime.now(timezone.utc) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    done = {"id": "a1", "profile": "default", "flow": "device", "state": "done", "expires_at": exp, "started_at": exp,
            "identity": {"preferred_username": "kurt", "sub": "s-2"}}
    agent.handlers[("POST", "/v1/login")] = lambda path, body: (200, done)
    kc.login(switch_user=True)
    kc.login(force=True)
    posts = [r[3] for r in agent.requests if r[0] == "POST" and r[1] == "/v1/login"]
    assert posts == [{"profile": "default", "flow": "device", "switch_user": True}, {"profile": "default", "flow": "device"}]


def test_logout_without_an_agent_runs_the_cli(fake_cli):
    # No agent answers on a socket: `kc-agent logout` does the same work in
    # its own process, and its refusal reaches the caller.
    fake_cli.configure(0, "")
    kc.logout("lab")
    kc.logout("lab", all=True)
    assert fake_cli.calls() == [["logout", "--profile", "lab"], ["logout", "--profile", "lab", "--all", "--yes"]]
    fake_cli.configure(1, "", "kc-agent: error: the provider refused\nkc-agent: hint: try again\n")
    with pytest.raises(kc.KcAgentError) as ei:
        kc.logout("lab")
    assert ei.value.message == "the provider refused" and ei.value.hint == "try again"


@pytest.mark.parametrize("remote, words", [
    ("ended_here_only", "only this machine's session was ended"),
    ("failed", "not ended at the identity provider"),
])
def test_logout_warns_when_keycloak_did_not_end_every_session(agent, remote, words):
    answer = {"profile": "lab", "logged_in": True, "remote": remote, "remote_error": "the account API refused (no manage-account role)"}
    agent.handlers[("POST", "/v1/logout")] = lambda path, body: (200, answer)
    with pytest.warns(kc.KcAgentWarning) as caught:
        kc.logout("lab", all=True)
    text = str(caught[0].message)
    assert words in text and "manage-account" in text


def test_logout_that_ended_the_session_is_silent(agent, recwarn):
    agent.handlers[("POST", "/v1/logout")] = lambda path, body: (200, {"profile": "lab", "logged_in": True, "remote": "ended"})
    kc.logout("lab", all=True)
    assert not [w for w in recwarn if issubclass(w.category, kc.KcAgentWarning)]
