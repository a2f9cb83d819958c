#!/usr/bin/env python3
"""Will `pip install .` (and its extras) on a Raspberry Pi use wheels, or build something from source?

For each target (Raspberry Pi OS 64-bit: linux aarch64; 32-bit: linux armv7l) and for each
runtime dependency in pyproject.toml, each optional extra ([project.optional-dependencies]),
and the dependencies of those, asks pip (with --only-binary=:all: and the Pi's platform tags,
nothing is installed) which wheel it would pick, and prints whether it is pure Python, a
wheel for the Pi's platform, or has no wheel (pip would build it from source: a compiler,
headers and time on the Pi; a source-only package with no wheel for any platform is built
here to see whether it is plain Python). Then a table: which extra installs on which target.

    python3 scripts/check_wheels.py                     # every target
    python3 scripts/check_wheels.py --arch aarch64 --python 3.11
    python3 scripts/check_wheels.py --extra-index-url https://www.piwheels.org/simple   # as 32-bit Raspberry Pi OS does

Needs pip >= 22.2 and access to the package index (and PyPI's JSON API). Exit status 1 only if a
runtime dependency (or one of theirs) would need a compiler, or is missing, on a 64-bit target:
the skill's contract is "pip install . on a 64-bit Pi needs no compiler". The extras and the
32-bit targets are reported, not enforced. Environment markers are evaluated for the target
(linux, its machine, its Python version, the extra).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError:  # pip always carries a copy
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import InvalidVersion, Version

REPO = Path(__file__).resolve().parent.parent

# name: (label, machine, Python version, glibc minor version of the OS: manylinux_2_17 .. manylinux_2_<this>)
TARGETS = {
    "aarch64-3.11": ("Raspberry Pi OS 12 'bookworm' 64-bit", "aarch64", "3.11", 36),
    "aarch64-3.13": ("Raspberry Pi OS 13 'trixie' 64-bit", "aarch64", "3.13", 41),
    "armv7l-3.11": ("Raspberry Pi OS 12 'bookworm' 32-bit", "armv7l", "3.11", 36),
    "armv7l-3.13": ("Raspberry Pi OS 13 'trixie' 32-bit", "armv7l", "3.13", 41),
}
PYPI_JSON = "https://pypi.org/pypi/{name}/json"


@dataclass
class Verdict:
    name: str
    requirement: str
    kind: str  # "pure Python" | "<machine> wheel" | "built from source" | "compiled from source" | "not found"
    file: str = ""
    detail: str = ""
    needed_by: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    requires_text: list[str] = field(default_factory=list)


def platform_args(machine: str, glibc_minor: int) -> list[str]:
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(glibc_minor, 16, -1)] + [f"manylinux2014_{machine}", f"linux_{machine}"]
    return [arg for tag in tags for arg in ("--platform", tag)]


def marker_environment(python: str, machine: str) -> dict[str, str]:
    env = dict(default_environment())
    env.update(
        python_version=python,
        python_full_version=f"{python}.0",
        sys_platform="linux",
        platform_system="Linux",
        platform_machine=machine,
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
    for machine in ("aarch64", "armv7l"):
        if machine in platform:
            return f"{machine} wheel"
    return f"wheel for {platform}"


def pypi_json(name: str, version: str | None = None) -> dict:
    url = PYPI_JSON.format(name=canonicalize_name(name)) if version is None else PYPI_JSON.replace("/json", f"/{version}/json").format(name=canonicalize_name(name))
    with urllib.request.urlopen(url, timeout=60) as answer:
        return json.load(answer)


def wheels_elsewhere(requirement: str) -> tuple[str, list[str]]:
    """For a requirement with no wheel for the target: the newest matching release's files on
    PyPI (JSON API). ("", []) when it has no wheel for any platform (a source-only package: built
    here to see what it is), else a note that it is compiled (wheels for other platforms) and
    its Requires-Dist (so that what it would bring is checked too)."""
    req = Requirement(requirement)
    try:
        project = pypi_json(req.name)
        releases = project["releases"]
    except (OSError, ValueError, KeyError):
        return "", []
    versions = []
    for text, files in releases.items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if files and not version.is_prerelease and version in req.specifier:
            versions.append((version, files))
    if not versions:
        return "", []
    version, files = max(versions, key=lambda item: item[0])
    platforms = sorted({f["filename"][: -len(".whl")].split("-")[-1] for f in files if f["filename"].endswith(".whl")})
    if not platforms:
        return "", []
    machines = sorted({m for p in platforms for m in ("x86_64", "aarch64", "armv7l", "win_amd64", "macosx", "i686", "ppc64le", "s390x") if m in p})
    try:
        info = project["info"] if project["info"].get("version") == str(version) else pypi_json(req.name, str(version))["info"]
        requires = info.get("requires_dist") or []
    except (OSError, ValueError, KeyError):
        requires = []
    sdist = any(f.get("packagetype") == "sdist" for f in files)
    where = f"{req.name} {version}: compiled, wheels only for {', '.join(machines) or ', '.join(platforms[:3])}"
    return where + ("; pip would compile it on the Pi" if sdist else "; and no source archive: pip cannot install it"), requires


def ask_pip(requirement: str, machine: str, python: str, glibc_minor: int, work: Path, index_args: list[str]) -> tuple[str, str, list[str]]:
    """(wheel file name or "", pip's complaint, Requires-Dist) for one requirement, no deps."""
    report = work / "report.json"
    report.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps", "--ignore-installed",
        "--disable-pip-version-check", "--only-binary=:all:", *platform_args(machine, glibc_minor), *index_args,
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


def check_target(machine: str, python: str, glibc_minor: int, groups: dict[str, list[str]], index_args: list[str]) -> tuple[list[Verdict], dict[str, set[str]]]:
    """Verdicts for every package the groups need (groups: "" for the runtime dependencies, then
    each extra's name), and for each group the names it needs (its own and theirs)."""
    verdicts: dict[str, Verdict] = {}
    needs: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory(prefix="check-wheels-") as tmp:
        work = Path(tmp)
        for group, direct in groups.items():
            env = marker_environment(python, machine)
            env["extra"] = group
            needed = needs.setdefault(group, set())
            queue: list[tuple[str, str | None]] = [(req, None) for req in direct]
            while queue:
                text, parent = queue.pop(0)
                req = Requirement(text)
                if req.marker is not None and not req.marker.evaluate(env if parent is None else {**env, "extra": ""}):
                    continue
                name = canonicalize_name(req.name)
                if name == "voice-skill":
                    continue
                if name in verdicts:
                    if parent and parent not in verdicts[name].needed_by:
                        verdicts[name].needed_by.append(parent)
                    if name not in needed:
                        needed.add(name)
                        queue += [(dep, name) for dep in verdicts[name].requires_text]
                    continue
                needed.add(name)
                plain = f"{req.name}{req.specifier}"
                filename, complaint, requires = ask_pip(plain, machine, python, glibc_minor, work, index_args)
                if filename:
                    verdict = Verdict(name, plain, classify(filename), filename)
                elif (elsewhere := wheels_elsewhere(plain))[0]:
                    compiled, requires = elsewhere
                    verdict = Verdict(name, plain, "compiled from source" if "pip would compile" in compiled else "not found", "", compiled)
                else:
                    built, what = build_from_source(plain, work)
                    kind = ("built from source" if "without a compiler" in what else "compiled from source") if built else "not found"
                    verdict = Verdict(name, plain, kind, built, what if built else f"{complaint}; {what}")
                if parent:
                    verdict.needed_by.append(parent)
                verdicts[name] = verdict
                dep_env = {**env, "extra": ""}
                for dep in requires:
                    dep_req = Requirement(dep)
                    if dep_req.marker is not None and not dep_req.marker.evaluate(dep_env):
                        continue
                    verdict.requires.append(canonicalize_name(dep_req.name))
                    verdict.requires_text.append(dep)
                    queue.append((dep, name))
    return list(verdicts.values()), needs


BLOCKING = ("compiled from source", "not found")


def describe(v: Verdict) -> str:
    return {
        "built from source": f"NO WHEEL, built from source ({v.detail}; here: {v.file})",
        "compiled from source": f"NO WHEEL, {v.detail}",
        "not found": f"NO WHEEL, {v.detail}" if v.detail.endswith("pip cannot install it") else f"NOT FOUND: {v.detail}",
    }.get(v.kind, f"{v.kind:14s} {v.file}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", choices=sorted({t[2] for t in TARGETS.values()}), help="target Python version (default: all)")
    parser.add_argument("--arch", action="append", choices=sorted({t[1] for t in TARGETS.values()}), help="target machine (default: all)")
    parser.add_argument("--extra-index-url", action="append", default=[], help="another index pip may use (32-bit Raspberry Pi OS adds https://www.piwheels.org/simple)")
    parser.add_argument("--pyproject", type=Path, default=REPO / "pyproject.toml")
    args = parser.parse_args(argv)
    project = tomllib.loads(args.pyproject.read_text("utf-8"))["project"]
    direct = project["dependencies"]
    extras = project.get("optional-dependencies", {})
    groups = {"": direct, **extras}
    index_args = [arg for url in args.extra_index_url for arg in ("--extra-index-url", url)]
    worst = 0
    table: list[tuple[str, dict[str, str]]] = []
    for key, (label, machine, python, glibc_minor) in TARGETS.items():
        if (args.python and python not in args.python) or (args.arch and machine not in args.arch):
            continue
        print(f"== {label}: Python {python}, linux {machine}, glibc 2.{glibc_minor} (manylinux_2_17..2_{glibc_minor}, linux_{machine})"
              + (f", also {', '.join(args.extra_index_url)}" if args.extra_index_url else ""), flush=True)
        verdicts, needs = check_target(machine, python, glibc_minor, groups, index_args)
        by_name = {v.name: v for v in verdicts}
        names = {canonicalize_name(Requirement(r).name) for r in direct}
        base = needs[""]
        sections = [("runtime dependencies (pyproject.toml)", [v for v in verdicts if v.name in names and v.name in base]),
                    ("their dependencies", [v for v in verdicts if v.name not in names and v.name in base])]
        for extra in extras:
            sections.append((f"extra [{extra}] (what the runtime dependencies do not already bring)", [by_name[n] for n in sorted(needs[extra] - base)]))
        skipped = [Requirement(r).name for r in direct if canonicalize_name(Requirement(r).name) not in base]
        for title, group in sections:
            print(f"  {title}:")
            for v in group:
                by = f"  (for {', '.join(v.needed_by)})" if v.needed_by and v.name not in names else ""
                print(f"    {v.requirement:28s} {describe(v)}{by}")
        if skipped:
            print(f"  not for {machine} (environment markers in pyproject.toml): {', '.join(skipped)}")
        row = {}
        for group in groups:
            own = needs[group] if not group else needs[group] - base  # an extra: what it adds to the runtime
            blocking = [by_name[n] for n in sorted(own) if by_name[n].kind in BLOCKING]
            row[group or "runtime"] = "yes" if not blocking else "no: " + ", ".join(
                f"{v.name} ({'no wheel, no source either' if v.kind == 'not found' else 'needs a compiler'})" for v in blocking)
        table.append((f"{label} (Python {python})", row))
        counts = {kind: sum(v.kind == kind for v in verdicts if v.name in base) for kind in ("pure Python", f"{machine} wheel", "built from source", "compiled from source", "not found")}
        print("  runtime summary: " + ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) + "\n", flush=True)
        if machine == "aarch64" and (counts["compiled from source"] or counts["not found"]):
            worst = 1
    print("== Which installs without a compiler (from wheels; pure Python from source is fine); an extra: what it adds to the runtime")
    for label, row in table:
        print(f"  {label}:")
        for group, verdict in row.items():
            print(f"    {group if group == 'runtime' else '[' + group + ']':16s} {verdict}")
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
