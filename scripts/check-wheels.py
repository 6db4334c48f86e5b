#!/usr/bin/env python3
"""Checks the wheels scripts/build-wheels.py made (release-check runs it):

- every platform wheel's tags name the OS and architecture of the binary
  inside it, read from the binary's own header (ELF, Mach-O or PE);
- the pure wheel has no binary;
- the host's wheel installs with pip into a fresh virtualenv, puts kc-agent
  in the venv's bin, `kc-agent version` says the wheel's version, and the
  client's agent_path() is that binary even with no kc-agent on PATH.

    scripts/check-wheels.py DIR
"""

import os
import platform
import struct
import subprocess
import sys
import tempfile
import zipfile

ELF_MACHINES = {0x3E: "x86_64", 0xB7: "aarch64"}
MACHO_CPUS = {0x01000007: "x86_64", 0x0100000C: "arm64"}
PE_MACHINES = {0x8664: "amd64", 0xAA64: "arm64"}


def binary_platform(data: bytes) -> "tuple[str, str]":
    """(os, arch) from an executable's header."""
    if data[:4] == b"\x7fELF":
        endian = "<" if data[5] == 1 else ">"
        (machine,) = struct.unpack_from(endian + "H", data, 18)
        return "linux", ELF_MACHINES.get(machine, hex(machine))
    if data[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):
        (cpu,) = struct.unpack_from("<I", data, 4)
        return "macos", MACHO_CPUS.get(cpu, hex(cpu))
    if data[:2] == b"MZ":
        (pe,) = struct.unpack_from("<I", data, 0x3C)
        if data[pe:pe + 4] != b"PE\0\0":
            return "?", "bad PE header"
        (machine,) = struct.unpack_from("<H", data, pe + 4)
        return "windows", PE_MACHINES.get(machine, hex(machine))
    return "?", "unknown format"


def tag_platform(tag: str) -> "set[tuple[str, str]]":
    out = set()
    for t in tag.split("."):
        if t.startswith(("manylinux", "musllinux")):
            out.add(("linux", t.rsplit("_", 1)[-1] if not t.endswith("x86_64") else "x86_64"))
        elif t.startswith("macosx"):
            out.add(("macos", "x86_64" if t.endswith("x86_64") else t.rsplit("_", 1)[-1]))
        elif t == "win_amd64":
            out.add(("windows", "amd64"))
        elif t == "win_arm64":
            out.add(("windows", "arm64"))
        else:
            out.add(("?", t))
    return out


def fail(msg: str) -> None:
    print("check-wheels: FAIL:", msg)
    sys.exit(1)


def check_windows_under_wine(d: str, wheels: "list[str]") -> None:
    """The Windows wheel's kc-agent.exe runs (under Wine, in the test
    harness's prefix: internal/testenv/wine) and says the wheel's version."""
    import shutil

    win = [w for w in wheels if w.endswith("-win_amd64.whl")]
    if not win:
        return
    if not shutil.which("wine") or not sys.platform.startswith("linux"):
        if os.environ.get("KC_AGENT_REQUIRE_WINE") == "1":
            fail("wine is needed to run the Windows wheel's kc-agent.exe (KC_AGENT_REQUIRE_WINE=1)")
        print("check-wheels: no wine here; the Windows wheel's binary was not run")
        return
    version = win[0].split("-")[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(os.path.join(d, win[0])) as z:
        member = next(n for n in z.namelist() if n.endswith("/scripts/kc-agent.exe"))
        exe = os.path.join(tmp, "kc-agent.exe")
        with open(exe, "wb") as f:
            f.write(z.read(member))
        cp = subprocess.run(["go", "run", "./internal/testenv/cmd/kcwine", "run", exe, "version"], cwd=root,
                            capture_output=True, text=True, timeout=300)
    out = cp.stdout.strip()
    if cp.returncode != 0 or not out.startswith(f"kc-agent {version} ") or "windows/amd64" not in out:
        fail(f"{win[0]}: kc-agent.exe version under Wine: exit {cp.returncode}, {out!r} {cp.stderr.strip()[-300:]!r}")
    print(f"check-wheels: ok  {win[0]}: kc-agent.exe under Wine says {out}")


def main() -> None:
    d = sys.argv[1]
    wheels = sorted(f for f in os.listdir(d) if f.endswith(".whl"))
    if not wheels:
        fail(f"no wheels in {d}")
    host = None
    for w in wheels:
        name, version, py, abi, plat = w[:-4].split("-")
        with zipfile.ZipFile(os.path.join(d, w)) as z:
            names = z.namelist()
            bins = [n for n in names if "/scripts/" in n]
            wheel_meta = z.read(f"{name}-{version}.dist-info/WHEEL").decode()
            tags = {line.split(": ", 1)[1] for line in wheel_meta.splitlines() if line.startswith("Tag: ")}
            if tags != {f"{py}-{abi}-{t}" for t in plat.split(".")}:
                fail(f"{w}: WHEEL tags {sorted(tags)} do not match the file name")
            if plat == "any":
                if bins:
                    fail(f"{w}: the pure wheel carries {bins}")
                print(f"check-wheels: ok  {w}: no binary")
                continue
            if len(bins) != 1:
                fail(f"{w}: expected one kc-agent binary, found {bins}")
            got = binary_platform(z.read(bins[0]))
            want = tag_platform(plat)
            if want != {got}:
                fail(f"{w}: the tags say {sorted(want)}, the binary is {got}")
            print(f"check-wheels: ok  {w}: {bins[0].rsplit('/', 1)[1]} is {got[0]}/{got[1]}")
        if sys.platform.startswith("linux") and ("linux", platform.machine()) == got:
            host = (w, version)
    check_windows_under_wine(d, wheels)
    if not host:
        print("check-wheels: no wheel for this host; skipping the install check")
        return
    w, version = host
    with tempfile.TemporaryDirectory() as tmp:
        venv = os.path.join(tmp, "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "--no-index", os.path.join(d, w)], check=True)
        exe = os.path.join(venv, "bin", "kc-agent")
        if not os.access(exe, os.X_OK):
            fail(f"pip install {w} put no executable kc-agent in the venv's bin")
        out = subprocess.run([exe, "version"], capture_output=True, text=True, check=True).stdout
        if not out.startswith(f"kc-agent {version} "):
            fail(f"kc-agent version says {out.strip()!r}, the wheel is {version}")
        # A clean environment: no kc-agent on PATH, no kc-agent variables.
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp}
        got = subprocess.run([os.path.join(venv, "bin", "python"), "-c", "import kc_agent_client as k; print(k.agent_path())"],
                             capture_output=True, text=True, env=env, check=True).stdout.strip()
        if os.path.realpath(got) != os.path.realpath(exe):
            fail(f"agent_path() is {got!r}, not the wheel's {exe}")
        pyver = subprocess.run([os.path.join(venv, "bin", "python"), "-c", "import kc_agent_client as k; print(k.__version__)"],
                               capture_output=True, text=True, env=env, check=True).stdout.strip()
        if pyver != version:
            fail(f"kc_agent_client.__version__ is {pyver!r}, the wheel is {version}")
        print(f"check-wheels: ok  pip install {w}: {out.strip()}; agent_path() is the venv's kc-agent")


if __name__ == "__main__":
    main()
