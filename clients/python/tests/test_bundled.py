"""The kc-agent a platform wheel brought runs only when nobody else can have
replaced it: a real virtualenv laid out as pip installs the wheel (the
package, its dist-info and RECORD, bin/kc-agent), used by its own
interpreter in a subprocess."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

SRC = os.path.join(os.path.dirname(__file__), "..", "src", "kc_agent_client")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

PROBE = """
import kc_agent_client as k
try:
    print("PATH", k.agent_path())
except k.UntrustedAgent as e:
    print("REFUSED", e)
    print("HINT", e.hint)
"""

pytestmark = pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX modes")


class Env:
    def __init__(self, root: str) -> None:
        self.root = root
        subprocess.run([PYTHON, "-m", "venv", "--without-pip", root], check=True)
        self.python = os.path.join(root, "bin", "python")
        self.site = subprocess.run([self.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   check=True, capture_output=True, text=True).stdout.strip()
        shutil.copytree(SRC, os.path.join(self.site, "kc_agent_client"), ignore=shutil.ignore_patterns("__pycache__"))
        self.binary = os.path.join(root, "bin", "kc-agent")
        with open(self.binary, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(self.binary, 0o755)
        self.info = os.path.join(self.site, "kc_agent_client-0.1.0.dist-info")
        self.write_record(os.path.relpath(self.binary, self.site))

    def write_record(self, binary_row: str) -> None:
        os.makedirs(self.info, exist_ok=True)
        with open(os.path.join(self.info, "RECORD"), "w") as f:
            f.write("kc_agent_client/__init__.py,,\nkc_agent_client/_client.py,,\n" + binary_row + ",,\n")

    def probe(self, cwd: str = None, as_nobody: bool = False) -> str:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["PYTHONNOUSERSITE"] = "1"
        cmd = [self.python, "-c", PROBE]  # -c: the working directory is sys.path[0]
        if as_nobody:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
        cp = subprocess.run(cmd, cwd=cwd or self.root, env=env, capture_output=True, text=True, timeout=60)
        assert cp.returncode == 0, cp.stderr
        return cp.stdout


@pytest.fixture
def env(tmp_path):
    os.chmod(tmp_path, 0o755)
    return Env(str(tmp_path / "env"))


def test_a_private_venv_runs_its_binary(env):
    assert env.probe() == f"PATH {env.binary}\n"


@pytest.mark.parametrize("where", ["bin", "root", "binary", "record"])
def test_a_group_writable_environment_is_refused(env, where):
    path = {"bin": os.path.dirname(env.binary), "root": env.root, "binary": env.binary, "record": os.path.join(env.info, "RECORD")}[where]
    os.chmod(path, stat.S_IMODE(os.stat(path).st_mode) | stat.S_IWGRP)
    out = env.probe()
    assert out.startswith(f"REFUSED refusing to run the kc-agent that came with kc-agent-client: {path} is writable by its group"), out
    assert f"HINT chmod go-w {path}" in out


def test_a_binary_of_another_user_is_refused(env):
    if os.getuid() != 0:
        pytest.skip("needs root to chown")
    os.chown(env.binary, 65534, 65534)
    out = env.probe()
    assert "belongs to uid 65534" in out and out.startswith("REFUSED"), out


def test_a_dist_info_planted_in_the_working_directory_is_ignored(env, tmp_path):
    # A folder the notebook runs in: a dist-info whose RECORD claims this
    # very module (so that it looks like ours) and names its own binary.
    planted = tmp_path / "shared-folder"
    (planted / "evil").mkdir(parents=True)
    evil = planted / "evil" / "kc-agent"
    evil.write_text("#!/bin/sh\necho pwned\n")
    evil.chmod(0o755)
    info = planted / "kc_agent_client-9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kc-agent-client\nVersion: 9.9\n")
    client = os.path.relpath(os.path.join(env.site, "kc_agent_client", "_client.py"), planted)
    (info / "RECORD").write_text(f"{client},,\n../shared-folder/evil/kc-agent,,\n")
    # The plant works on importlib.metadata: it is the first kc-agent-client.
    check = subprocess.run([env.python, "-c", "from importlib import metadata; print(metadata.distribution('kc-agent-client').version)"],
                           cwd=planted, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert check.stdout.strip() == "9.9", check
    assert env.probe(cwd=str(planted)) == f"PATH {env.binary}\n"


def test_a_record_pointing_outside_the_scripts_directory_is_refused(env, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "kc-agent").write_text("#!/bin/sh\n")
    (outside / "kc-agent").chmod(0o755)
    env.write_record(os.path.relpath(str(outside / "kc-agent"), env.site))
    out = env.probe()
    assert out.startswith(f"REFUSED refusing to run {outside / 'kc-agent'}") and "outside this environment's scripts directory" in out, out
    assert "HINT reinstall kc-agent-client" in out


def test_a_root_owned_shared_environment_works_for_another_user():
    if os.getuid() != 0 or not shutil.which("setpriv"):
        if os.environ.get("KC_AGENT_REQUIRE_OTHER_UID") == "1":
            pytest.fail("needs root and setpriv to act as another user (KC_AGENT_REQUIRE_OTHER_UID=1)")
        pytest.skip("needs root and setpriv to act as another user")
    # The environment is root's (this test runs as root), mode 0755, in a
    # directory everybody can search: a JupyterHub's shared environment.
    # Another user runs its binary.
    top = tempfile.mkdtemp(prefix="kc-shared-env-")
    old = os.umask(0o022)  # as an administrator installs it (the test runner's may be 077)
    try:
        os.chmod(top, 0o755)
        env = Env(os.path.join(top, "env"))
        assert env.probe(as_nobody=True) == f"PATH {env.binary}\n"
    finally:
        os.umask(old)
        shutil.rmtree(top)
