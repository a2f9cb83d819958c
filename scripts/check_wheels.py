#!/usr/bin/env python3
"""Will `pip install .` on a 64-bit Raspberry Pi use wheels, or build something from source?

For each runtime dependency in pyproject.toml, and for the dependencies of those, asks pip
(with --only-binary=:all: and the Pi's platform tags, nothing is installed) which wheel it
would pick for linux aarch64, and prints whether it is pure Python, an aarch64 wheel, or has
no wheel (pip would build it from source: a compiler, headers and time on the Pi).

    python3 scripts/check_wheels.py              # Raspberry Pi OS 12 (Python 3.11) and 13 (3.13)
    python3 scripts/check_wheels.py --python 3.11

Needs pip >= 22.2 and access to the package index. Exit status 1 if anything would be built
from source on some target. Environment markers are evaluated for the target (linux, aarch64,
its Python version), extras are not followed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # pip always carries a copy
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent

# (label, Python version, glibc minor version of the OS: manylinux_2_17 .. manylinux_2_<this>)
TARGETS = {
    "3.11": ("Raspberry Pi OS 12 'bookworm' 64-bit", "3.11", 36),
    "3.13": ("Raspberry Pi OS 13 'trixie' 64-bit", "3.13", 41),
}


@dataclass
class Verdict:
    name: str
    requirement: str
    kind: str  # "pure Python" | "aarch64 wheel" | "built from source" | "not found"
    file: str = ""
    detail: str = ""
    needed_by: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)


def platform_args(glibc_minor: int) -> list[str]:
    tags = [f"manylinux_2_{minor}_aarch64" for minor in range(glibc_minor, 16, -1)] + ["manylinux2014_aarch64", "linux_aarch64"]
    return [arg for tag in tags for arg in ("--platform", tag)]


def marker_environment(python: str) -> dict[str, str]:
    env = dict(default_environment())
    env.update(
        python_version=python,
        python_full_version=f"{python}.0",
        sys_platform="linux",
        platform_system="Linux",
        platform_machine="aarch64",
        os_name="posix",
        implementation_name="cpython",
        platform_python_implementation="CPython",
        extra="",
    )
    return env


def classify(filename: str) -> str:
    tags = filename[: -len(".whl")].split("-")[-3:]  # python, abi, platform
    platform = tags[2] if len(tags) == 3 else ""
    if platform == "any":
        return "pure Python"
    if "aarch64" in platform:
        return "aarch64 wheel"
    return f"wheel for {platform}"


def ask_pip(requirement: str, python: str, glibc_minor: int, work: Path) -> tuple[str, str, list[str]]:
    """(wheel file name or "", pip's complaint, Requires-Dist) for one requirement, no deps."""
    report = work / "report.json"
    report.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps", "--ignore-installed",
        "--disable-pip-version-check", "--only-binary=:all:", *platform_args(glibc_minor),
        "--python-version", python, "--implementation", "cp", "--abi", "cp" + python.replace(".", ""),
        "--target", str(work / "target"), "--report", str(report), requirement,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not report.exists():
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("ERROR:")]
        return "", (errors[0] if errors else result.stderr.strip()[-200:]), []
    items = json.loads(report.read_text())["install"]
    item = items[0]
    filename = item["download_info"]["url"].rsplit("/", 1)[-1]
    return filename, "", item["metadata"].get("requires_dist") or []


def build_from_source(requirement: str, work: Path) -> tuple[str, str]:
    """Build the source archive here, as pip would on the Pi: (sdist name, what it turned out to be)."""
    folder = work / "built"
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-binary=:all:", "--disable-pip-version-check", "-w", str(folder), requirement]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    name = canonicalize_name(Requirement(requirement).name)
    wheels = [p.name for p in folder.glob("*.whl") if canonicalize_name(p.name.split("-")[0]) == name] if folder.exists() else []
    if result.returncode != 0 or not wheels:
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("ERROR:")]
        return "", errors[0] if errors else "no source archive either"
    if classify(wheels[0]) == "pure Python":
        return wheels[0], "pure Python, builds without a compiler"
    return wheels[0], "compiled: needs a compiler and headers on the Pi"


def check_target(python: str, glibc_minor: int, direct: list[str]) -> list[Verdict]:
    env = marker_environment(python)
    verdicts: dict[str, Verdict] = {}
    queue: list[tuple[str, str | None]] = [(req, None) for req in direct]
    with tempfile.TemporaryDirectory(prefix="check-wheels-") as tmp:
        work = Path(tmp)
        while queue:
            text, parent = queue.pop(0)
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonicalize_name(req.name)
            if name in verdicts:
                if parent and parent not in verdicts[name].needed_by:
                    verdicts[name].needed_by.append(parent)
                continue
            plain = f"{req.name}{req.specifier}"
            filename, complaint, requires = ask_pip(plain, python, glibc_minor, work)
            if filename:
                verdict = Verdict(name, plain, classify(filename), filename)
            else:
                built, what = build_from_source(plain, work)
                verdict = Verdict(name, plain, "built from source" if built else "not found", built, what if built else f"{complaint}; {what}")
            if parent:
                verdict.needed_by.append(parent)
            verdicts[name] = verdict
            for dep in requires:
                dep_req = Requirement(dep)
                if dep_req.marker is not None and not dep_req.marker.evaluate(env):
                    continue
                verdict.requires.append(canonicalize_name(dep_req.name))
                queue.append((dep, name))
    return list(verdicts.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", choices=sorted(TARGETS), help="target Python version (default: all)")
    parser.add_argument("--pyproject", type=Path, default=REPO / "pyproject.toml")
    args = parser.parse_args(argv)
    direct = tomllib.loads(args.pyproject.read_text("utf-8"))["project"]["dependencies"]
    worst = 0
    for key in args.python or sorted(TARGETS):
        label, python, glibc_minor = TARGETS[key]
        print(f"== {label}: Python {python}, linux aarch64, glibc 2.{glibc_minor} (manylinux_2_17..2_{glibc_minor}, linux_aarch64)")
        verdicts = check_target(python, glibc_minor, direct)
        names = {canonicalize_name(Requirement(r).name) for r in direct}
        for title, group in (("runtime dependencies (pyproject.toml)", [v for v in verdicts if v.name in names]), ("their dependencies", [v for v in verdicts if v.name not in names])):
            print(f"  {title}:")
            for v in group:
                by = f"  (for {', '.join(v.needed_by)})" if v.needed_by and v.name not in names else ""
                what = {"built from source": f"NO WHEEL, built from source ({v.detail}; here: {v.file})", "not found": f"NOT FOUND: {v.detail}"}.get(v.kind, f"{v.kind:14s} {v.file}")
                print(f"    {v.requirement:28s} {what}{by}")
        counts = {kind: sum(v.kind == kind for v in verdicts) for kind in ("pure Python", "aarch64 wheel", "built from source", "not found")}
        print("  summary: " + ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) + "\n")
        if counts["built from source"] or counts["not found"]:
            worst = 1
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
