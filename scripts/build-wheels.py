#!/usr/bin/env python3
"""Builds the kc-agent-client wheels: one per platform, each holding the
pure-Python client and the matching kc-agent binary (installed by pip as a
script, so `kc-agent` is on the venv's PATH), and one pure py3-none-any wheel
without a binary, for machines that have kc-agent from elsewhere.

Why a script of our own: a wheel is a zip with three metadata files, and the
binary comes from the same `go build` (and the same version) as every other
release artifact; a build backend around it (hatchling hooks, go-to-wheel)
would add a tool, not remove work. Standard library only.

    scripts/build-wheels.py [--out build/wheels] [--only TAG]

The version is the Go build's: $KC_AGENT_VERSION, else the latest git tag
without its "v" (`git describe --tags --abbrev=0`), else pyproject's.
"""

import argparse
import base64
import csv
import hashlib
import io
import os
import re
import subprocess
import sys
import tomllib
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG_SRC = os.path.join(ROOT, "clients", "python", "src", "kc_agent_client")
DIST = "kc_agent_client"

# Wheel platform tag -> (GOOS, GOARCH, binary name). Go binaries built with
# CGO_ENABLED=0 are static: any glibc (manylinux2014, i.e. glibc 2.17) and
# musl run them. Go 1.26 needs macOS 12 (Monterey) or later.
PLATFORMS = {
    "manylinux_2_17_x86_64.manylinux2014_x86_64.musllinux_1_1_x86_64": ("linux", "amd64", "kc-agent"),
    "manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64": ("linux", "arm64", "kc-agent"),
    "macosx_12_0_x86_64": ("darwin", "amd64", "kc-agent"),
    "macosx_12_0_arm64": ("darwin", "arm64", "kc-agent"),
    "win_amd64": ("windows", "amd64", "kc-agent.exe"),
}


def version() -> str:
    v = os.environ.get("KC_AGENT_VERSION", "").strip()
    if not v:
        try:
            v = subprocess.run(["git", "describe", "--tags", "--abbrev=0"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            v = ""
    if not v:
        v = project()["version"]
    v = v[1:] if v.startswith("v") else v
    # goreleaser's snapshot versions (0.2.1-snapshot) as PEP 440 (0.2.1.dev0).
    v = re.sub(r"-(snapshot|next|dev).*$", ".dev0", v)
    if not re.fullmatch(r"\d+(\.\d+)*([ab]|rc)?\d*(\.post\d+)?(\.dev\d+)?", v):
        sys.exit(f"build-wheels: {v!r} is not a PEP 440 release version; set KC_AGENT_VERSION")
    return v


def project() -> dict:
    """The [project] table of clients/python/pyproject.toml: the one source of
    the wheel's metadata (hatchling builds the pure wheel from it too)."""
    with open(os.path.join(ROOT, "clients", "python", "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def metadata(v: str) -> str:
    """Core metadata 2.1 for version v, from pyproject.toml."""
    proj = project()
    with open(os.path.join(ROOT, "clients", "python", proj["readme"]), encoding="utf-8") as f:
        readme = f.read()
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {proj['name']}",
        f"Version: {v}",
        f"Summary: {proj['description']}",
        f"License: {proj['license']}",
        f"Requires-Python: {proj['requires-python']}",
    ]
    if proj.get("keywords"):
        lines.append("Keywords: " + ",".join(proj["keywords"]))
    lines += [f"Classifier: {c}" for c in proj.get("classifiers", [])]
    lines += [f"Requires-Dist: {d}" for d in proj.get("dependencies", [])]
    for extra, deps in proj.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {d}; extra == "{extra}"' for d in deps]
    lines.append("Description-Content-Type: text/markdown")
    return "\n".join(lines) + "\n\n" + readme


def build_binary(goos: str, goarch: str, name: str, v: str, work: str) -> str:
    out = os.path.join(work, f"{goos}-{goarch}", name)
    env = dict(os.environ, GOOS=goos, GOARCH=goarch, CGO_ENABLED="0")
    subprocess.run(
        ["go", "build", "-trimpath", "-ldflags", f"-s -w -X main.version={v}", "-o", out, "./cmd/kc-agent"],
        cwd=ROOT, env=env, check=True,
    )
    return out


def record_line(path: str, data: bytes) -> list:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [path, f"sha256={digest}", str(len(data))]


def write_wheel(out_dir: str, v: str, tag: str, binary: "tuple[str, str] | None") -> str:
    py_tag = "py3-none-" + tag if binary else "py3-none-any"
    name = f"{DIST}-{v}-{py_tag}.whl"
    info = f"{DIST}-{v}.dist-info"
    files = []
    for fn in sorted(os.listdir(PKG_SRC)):
        p = os.path.join(PKG_SRC, fn)
        if os.path.isfile(p) and (fn.endswith(".py") or fn == "py.typed"):
            with open(p, "rb") as f:
                files.append((f"kc_agent_client/{fn}", f.read(), 0o644))
    if binary:
        path, exe_name = binary
        with open(path, "rb") as f:
            files.append((f"{DIST}-{v}.data/scripts/{exe_name}", f.read(), 0o755))
    wheel_meta = f"Wheel-Version: 1.0\nGenerator: kc-agent build-wheels\nRoot-Is-Purelib: {'false' if binary else 'true'}\n"
    for t in py_tag.split("-")[2].split("."):
        wheel_meta += f"Tag: py3-none-{t}\n"
    files.append((f"{info}/METADATA", metadata(v).encode(), 0o644))
    files.append((f"{info}/WHEEL", wheel_meta.encode(), 0o644))
    rows = [record_line(p, d) for p, d, _ in files] + [[f"{info}/RECORD", "", ""]]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    files.append((f"{info}/RECORD", buf.getvalue().encode(), 0o644))
    os.makedirs(out_dir, exist_ok=True)
    target = os.path.join(out_dir, name)
    with zipfile.ZipFile(target + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
        for p, data, mode in files:
            zi = zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0))  # reproducible
            zi.external_attr = (0o100000 | mode) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    os.replace(target + ".tmp", target)
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "wheels"))
    ap.add_argument("--only", action="append", help="platform tag, 'host' or 'any'; repeatable; default all")
    args = ap.parse_args()
    v = version()
    work = os.path.join(args.out, ".bin")
    wanted = args.only or (list(PLATFORMS) + ["any"])
    for tag in wanted:
        if tag == "any":
            print(write_wheel(args.out, v, "any", None))
            continue
        if tag == "host":
            import platform

            machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
            system = {"Linux": "linux", "Darwin": "darwin", "Windows": "windows"}.get(platform.system(), "")
            tag = next((t for t, (goos, goarch, _) in PLATFORMS.items() if goos == system and
                        {"x86_64": "amd64", "aarch64": "arm64"}.get(machine) == goarch), tag)
        match = [t for t in PLATFORMS if t == tag or tag in t.split(".")]
        if not match:
            sys.exit(f"build-wheels: unknown platform {tag!r}; one of: {', '.join(PLATFORMS)}, any")
        goos, goarch, exe = PLATFORMS[match[0]]
        print(write_wheel(args.out, v, match[0], (build_binary(goos, goarch, exe, v, work), exe)))


if __name__ == "__main__":
    main()
