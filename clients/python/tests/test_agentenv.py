import json
import os

import pytest

from kc_agent_client import _agentenv

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

with open(os.path.join(REPO, "internal", "agentenv", "testdata", "vectors.json"), encoding="utf-8") as _f:
    _CASES = json.load(_f)["cases"]


@pytest.mark.parametrize("case", _CASES, ids=lambda c: c["goos"])
def test_shared_vectors(case):
    # The same vectors as kc-agent's internal/agentenv.
    assert case["keep"] and case["drop"]
    for name in case["keep"]:
        assert _agentenv.keep(name, case["goos"]), f"{case['goos']}: {name} dropped"
    for name in case["drop"]:
        assert not _agentenv.keep(name, case["goos"]), f"{case['goos']}: {name} kept"


def test_agent_environment_drops_the_spawners_secrets():
    env = {"JUPYTERHUB_API_TOKEN": "s3cret", "HOME": "/home/a", "KC_AGENT_SOCK": "/s", "AWS_SECRET_ACCESS_KEY": "x", "PATH": "/bin"}
    assert _agentenv.agent_environment(env, "linux") == {"HOME": "/home/a", "KC_AGENT_SOCK": "/s", "PATH": "/bin"}


def test_the_cli_fallback_runs_with_the_filtered_environment(fake_cli, monkeypatch):
    # The CLI (which may autostart the agent) never sees the kernel's secrets.
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-secret")
    monkeypatch.setenv("KC_AGENT_PROFILE", "default")
    seen = {}
    import subprocess

    real = subprocess.run

    def spy(args, **kw):
        seen.update(kw.get("env") or {"<inherited>": "1"})
        return real(args, **kw)

    monkeypatch.setattr(subprocess, "run", spy)
    from kc_agent_client import _client

    try:
        _client.fetch_token()
    except Exception:
        pass
    assert "<inherited>" not in seen
    assert "JUPYTERHUB_API_TOKEN" not in seen
    assert seen.get("KC_AGENT_PROFILE") == "default"
