"""Running a system on one WAV file and measuring it: events, CPU time, peak memory, start-up.

Each run is one child process, started by the small launcher bench/launch.py. CPU time
(user + system) and peak RSS come from the rusage the kernel reports when the launcher reaps
the child (os.wait4): what a getrusage(RUSAGE_CHILDREN) delta around a lone child gives, but
exact per child when two runs overlap, and the peak RSS is the child's own (RUSAGE_CHILDREN
keeps the largest child ever seen, and a child of the big bench process inherits the bench's
peak mark; see launch.py). Start-up is the wall time from the launcher's fork to the
"listening" line, read from the child's stdout as it arrives (both on CLOCK_MONOTONIC).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).resolve().parent / "launch.py"


@dataclass(frozen=True)
class System:
    """Something that reads a WAV file and prints JSON events: the program or a peer."""

    key: str  # column key in the summary
    label: str  # column title
    argv: tuple[str, ...]  # the command; the file goes after --input
    cwd: Path = REPO  # where it runs (python3 -m puts this first on the path)
    first_on_path: tuple[str, ...] = ()  # PYTHONPATH entries before the repository
    ordinary_parts: int | None = None  # runs only on ordinary-speech parts 1..n (None: all)
    skip_conditions: tuple[str, ...] = ()  # trigger-file conditions it does not run on
    follow_ups: bool = True  # runs on the follow-up files (the peers spot wake phrases only: they do not)
    aliases: tuple[str, ...] = ()  # other names for --systems

    def command(self, wav: Path) -> list[str]:
        return [*self.argv, "--input", str(wav)]

    def sandbox(self, root: Path) -> Sandbox:
        return Sandbox(root, first_on_path=self.first_on_path)


PROGRAM_ARGV = (sys.executable, "-m", "voice_skill", "run", "--no-speak", "--json")


@dataclass(frozen=True)
class PastProgram:
    """The program as it was at one commit, run from a git worktree of it under bench/out/."""

    key: str  # column key in the summary
    short: str  # its name for --systems and --baseline, and in the "vs" column's title
    name: str  # the column title, before the commit
    commit: str  # as git knows it (a short hash)
    folder: str  # the worktree's folder under bench/out/

    @property
    def label(self) -> str:
        return f"{self.name} {self.commit}"

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.short,) if self.short != self.key else ()


OLD_ENGINE = PastProgram("old_engine", "old", "old engine", "93bb090", "old-engine")  # the last engine before wake engine v2
V2 = PastProgram("v2", "v2", "v2", "972466b", "v2")  # the last landed wake engine v2, before any v3 work
PAST_PROGRAMS = (OLD_ENGINE, V2)
OLD_ENGINE_COMMIT = OLD_ENGINE.commit  # training.tune_fusion runs the old engine too


def past_system(past: PastProgram, worktree: Path) -> System:
    """A past program's system: its worktree first on the path, run from it."""
    return System(past.key, past.label, PROGRAM_ARGV, cwd=worktree, first_on_path=(str(worktree),), aliases=past.aliases)


def signal_system(signal: str, label: str = "") -> System:
    """The program deciding with one choice of `voice-skill run --wake-signals`."""
    return System(signal, label or signal, (*PROGRAM_ARGV, "--wake-signals", signal))


# Wake engine v3: this checkout with the judge (--judge; the judge is off by default, so the
# default engine is v2's, the V2 column). The issue's targets apply to it.
PROGRAM = System("fused", "v3 (--judge)", (*PROGRAM_ARGV, "--judge"), aliases=("v3", "voice_skill", "program"))
PHONETIC = signal_system("phonetic")
NEURAL = signal_system("neural")
JUDGE = signal_system("judge", "judge alone")  # Whisper tiny.en deciding alone (wake engine v3)
SIGNAL_SYSTEMS = (PHONETIC, NEURAL, JUDGE)  # need their --wake-signals choice in the program
KWS_PEER = System("kws_peer", "kws peer", (sys.executable, "-m", "bench.peers", "kws"), follow_ups=False, aliases=("kws",))
# The LM peer costs ~0.15-0.3 CPU s per audio s, and ~1.5 in steady fan noise (its endpointer
# never closes, so it decodes everything; it found 0 % of the phrases there in the last full
# runs): it hears part 1 of each voice's ordinary speech only and skips the fan trigger files.
LM_PEER = System(
    "lm_peer", "LM peer", (sys.executable, "-m", "bench.peers", "lm"),
    ordinary_parts=1, skip_conditions=("fan10", "fan5", "runon10"), follow_ups=False, aliases=("lm",),
)
SYSTEM_ORDER = ("old_engine", "v2", "phonetic", "neural", "judge", "fused", "kws_peer", "lm_peer")
SYSTEMS = (PROGRAM, KWS_PEER, LM_PEER)  # those that need no worktree and no new option


@dataclass(frozen=True)
class Run:
    system: str
    file: str
    audio_seconds: float
    events: tuple[dict, ...]
    cpu_seconds: float  # user + system, the child and anything it waited for
    peak_rss_mb: float
    wall_seconds: float
    start_to_listening: float | None  # seconds; None if it never said it was listening
    returncode: int
    stderr_tail: str = ""

    @property
    def rtf(self) -> float:
        return self.cpu_seconds / self.audio_seconds if self.audio_seconds else float("nan")

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and any(e.get("event") == "done" for e in self.events)


# The children's own settings file. The benchmark measures wake phrases: no timed moment (on by
# default) may keep the skill quiet through the ones after a tip.
BENCH_CONFIG = "[content]\nmoments = false\n"


@dataclass(frozen=True)
class Sandbox:
    """A private home for the children: their config, state and data never touch the user's.
    Its settings file is BENCH_CONFIG (written by env())."""

    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    first_on_path: tuple[str, ...] = ()  # before the repository on PYTHONPATH

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for key, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
            env[key] = str(self.root / sub)
        env.pop("VOICE_SKILL_CONFIG", None)
        config = self.root / "config" / "voice-skill" / "config.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(BENCH_CONFIG, encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (*self.first_on_path, str(REPO), env.get("PYTHONPATH", "")) if p)
        env.update(self.extra_env)
        return env


def run_on_file(command: list[str], audio_seconds: float, sandbox: Sandbox, log: Path, timeout: float = 1800.0, system: str = "", name: str = "", cwd: Path = REPO) -> Run:
    """Run one command to completion (through bench/launch.py) and measure it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    usage_file = log.with_suffix(".rusage.json")
    usage_file.unlink(missing_ok=True)
    events: list[dict] = []
    listening_at: float | None = None
    with open(log, "w+", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(LAUNCHER), str(usage_file), *command],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=cwd,
            env=sandbox.env(),
            bufsize=1,
            start_new_session=True,  # a timeout kills the launcher and the child together
        )
        watchdog = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        watchdog.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "listening" and listening_at is None:
                listening_at = time.monotonic()
            events.append(event)
        proc.stdout.close()
        proc.wait()
        finished = time.monotonic()
        watchdog.cancel()
        stderr.seek(0)
        tail = stderr.read()[-2000:]
    usage = json.loads(usage_file.read_text("utf-8")) if usage_file.exists() else None
    spawned = usage["spawned_monotonic"] if usage else float("nan")
    return Run(
        system=system,
        file=name,
        audio_seconds=audio_seconds,
        events=tuple(events),
        cpu_seconds=usage["user_seconds"] + usage["system_seconds"] if usage else float("nan"),
        peak_rss_mb=usage["max_rss_kb"] / 1024 if usage else float("nan"),  # Linux reports kilobytes
        wall_seconds=finished - spawned,
        start_to_listening=listening_at - spawned if usage and listening_at is not None else None,
        returncode=proc.returncode,
        stderr_tail=tail,
    )


def program_fingerprint(root: Path = REPO) -> str:
    """A hash of the program's code and trigger table, to tell whether it changed during a run."""
    digest = hashlib.sha1()
    for path in sorted([*(root / "voice_skill").rglob("*.py"), root / "phrases" / "triggers.toml"]):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def git(*args: str, cwd: Path = REPO) -> str:
    """A git command's stdout, or "" if it failed."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def git_head() -> str:
    """The checked-out commit, with "+changes" when the program's files differ from it (read-only)."""
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--", "voice_skill", "phrases") else "")


def output_device_names() -> list[str]:
    """Speakers PortAudio can see (empty without a sound card or without PortAudio)."""
    try:
        from voice_skill.audio import list_devices

        return [d["name"] for d in list_devices() if d.get("max_output_channels", 0) > 0]
    except Exception:  # noqa: BLE001 - no PortAudio, no devices: either way nothing to play on
        return []


# ------------------------------------------------------------------ past programs and new options


class Unavailable(Exception):
    """A system cannot run here; the message says why."""


def ensure_worktree(path: Path, commit: str) -> Path:
    """A git worktree of `commit` at `path` (detached), made on demand and reused if present."""
    full = git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    if not full:
        raise Unavailable(f"git history has no commit {commit} (a shallow clone?)")
    path = path.resolve()
    if (path / ".git").exists():
        head = git("rev-parse", "HEAD", cwd=path)
        if head == full:
            return path
        raise Unavailable(f"{path} holds {head[:12] or 'something else'}, not {commit}; remove it: git worktree remove --force {path}")
    if path.exists() and any(path.iterdir()):
        raise Unavailable(f"{path} exists and is not a worktree of {commit}; move it away")
    git("worktree", "prune")  # forget worktrees whose folder was deleted
    done = subprocess.run(["git", "worktree", "add", "--detach", str(path), full], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise Unavailable(f"git worktree add failed: {done.stderr.strip()}")
    return path


def ensure_old_engine(path: Path) -> Path:
    """The old engine's worktree at `path` (training.tune_fusion uses it)."""
    return ensure_worktree(path, OLD_ENGINE_COMMIT)


def imported_from(system: System, sandbox_root: Path) -> Path:
    """Where `import voice_skill` resolves for a system (same interpreter, path and folder as its runs)."""
    done = subprocess.run(
        [sys.executable, "-c", "import voice_skill; print(voice_skill.__file__)"],
        cwd=system.cwd, env=system.sandbox(sandbox_root).env(), capture_output=True, text=True, timeout=60,
    )
    if done.returncode != 0:
        raise Unavailable(f"{system.label}: voice_skill does not import: {done.stderr.strip()[-300:]}")
    return Path(done.stdout.strip()).resolve().parent.parent


def past_program(past: PastProgram, path: Path, sandbox_root: Path) -> tuple[System, str]:
    """A past program's system from its worktree at `path`, checked to import the worktree's
    code; and a line saying so."""
    worktree = ensure_worktree(path, past.commit)
    system = past_system(past, worktree)
    root = imported_from(system, sandbox_root)
    if root != worktree:
        raise Unavailable(f"{past.label} imports voice_skill from {root}, not from {worktree}")
    return system, f"{past.name}: {past.commit} worktree {worktree}, imports its own voice_skill (fingerprint {program_fingerprint(worktree)})"


_HELP: dict[str, str] = {}


def run_help() -> str:
    """`voice-skill run --help` of the program here (read once; "" if it failed)."""
    if "help" not in _HELP:
        done = subprocess.run([*PROGRAM_ARGV[:4], "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
        _HELP["help"] = done.stdout if done.returncode == 0 else ""
    return _HELP["help"]


def wake_signal_choices(help_text: str) -> tuple[str, ...] | None:
    """The choices of --wake-signals in a `voice-skill run --help` text; None without the option."""
    found = re.search(r"--wake-signals\s+\{([^}]*)\}", help_text)
    if found:
        return tuple(c.strip() for c in found.group(1).split(",") if c.strip())
    return () if "--wake-signals" in help_text else None


def wake_signals_missing(choice: str, help_text: str | None = None) -> str | None:
    """Why `voice-skill run --wake-signals CHOICE` cannot be used yet, or None if it can."""
    choices = wake_signal_choices(run_help() if help_text is None else help_text)
    if choices is None:
        return "voice-skill run has no --wake-signals option yet"
    if choice not in choices:
        offered = f" (it offers {', '.join(choices)})" if choices else ""
        return f"voice-skill run --wake-signals does not offer {choice!r} yet{offered}"
    return None
