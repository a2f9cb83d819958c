"""Phrase packs (questions and tips as data files) and the no-repeat bag.

A pack is a TOML file:

    [pack]
    kind = "question"        # or "tip"
    category = "playful"

    [[phrase]]
    id = "q-playful-01"
    level = "light"          # or "deeper"
    text = "From sunrise to sunset, what would your perfect day look like?"

    [[phrase]]
    id = "t-moments-01"
    level = "light"
    seconds = 120            # optional: a timed moment; the skill keeps quiet this long,
    text = "..."             # then a soft chime and "time's up" (10 to 1800 seconds)

Problems are reported with file and line so a user can fix their own packs.
"""

from __future__ import annotations

import json
import logging
import random
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from voice_skill.errors import UserError
from voice_skill.state_file import write_atomically

log = logging.getLogger(__name__)

KINDS = ("question", "tip")
LEVELS = ("light", "deeper")
PHRASE_KEYS = {"id", "level", "text"}
OPTIONAL_PHRASE_KEYS = {"seconds"}
TIMER_SECONDS = (10, 1800)  # a timed moment: ten seconds to half an hour
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
CATEGORY_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")
PACK_GLOB = "*.toml"
NOT_A_PACK = {"triggers.toml"}


@dataclass(frozen=True)
class Phrase:
    id: str
    kind: str
    category: str
    level: str
    text: str
    source: str  # "file:line", for messages
    seconds: int | None = None  # a timed moment: quiet this long after it is said


@dataclass(frozen=True)
class PackProblem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class PackError(UserError):
    def __init__(self, problems: list[PackProblem]):
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s); run 'voice-skill phrases check')" if len(problems) > 1 else ""
        super().__init__(f"{first}{more}")


def bundled_phrases_dir() -> Path:
    """The phrases shipped with the program (wheel copy, else the source checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_phrases", here.parent / "phrases"):
        if candidate.is_dir():
            return candidate
    raise UserError(f"the bundled phrases folder is missing (looked in {here / '_phrases'}); reinstall voice-skill")


def _phrase_header_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines(), start=1) if line.strip().startswith("[[phrase]]")]


def _toml_error_line(exc: tomllib.TOMLDecodeError) -> int:
    found = re.search(r"line (\d+)", str(exc))
    return int(found.group(1)) if found else 1


def parse_pack(path: Path) -> tuple[list[Phrase], list[PackProblem]]:
    """Read one pack file; returns its phrases and any problems (file:line)."""
    problems: list[PackProblem] = []
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [PackProblem(path, 1, f"cannot read the file ({exc.strerror}); check its permissions")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [], [PackProblem(path, line, "not UTF-8 text; save the file as UTF-8")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        return [], [PackProblem(path, _toml_error_line(exc), f"not valid TOML: {message}")]

    pack = data.get("pack")
    if not isinstance(pack, dict):
        return [], [PackProblem(path, 1, "missing [pack] table with kind and category")]
    pack_line = next((i for i, ln in enumerate(text.splitlines(), 1) if ln.strip() == "[pack]"), 1)
    kind = pack.get("kind")
    category = pack.get("category")
    if kind not in KINDS:
        problems.append(PackProblem(path, pack_line, f"[pack] kind must be one of {', '.join(KINDS)}, not {kind!r}"))
    if not isinstance(category, str) or not CATEGORY_PATTERN.match(category):
        problems.append(PackProblem(path, pack_line, f"[pack] category must be a lower-case word, not {category!r}"))
    entries = data.get("phrase")
    if not isinstance(entries, list) or not entries:
        problems.append(PackProblem(path, pack_line, "no [[phrase]] entries"))
        return [], problems
    if problems:
        return [], problems

    lines = _phrase_header_lines(text)
    phrases: list[Phrase] = []
    for index, entry in enumerate(entries):
        line = lines[index] if index < len(lines) else pack_line
        unknown = set(entry) - PHRASE_KEYS - OPTIONAL_PHRASE_KEYS
        missing = PHRASE_KEYS - set(entry)
        if missing:
            problems.append(PackProblem(path, line, f"phrase is missing {', '.join(sorted(missing))}"))
            continue
        if unknown:
            problems.append(PackProblem(path, line, f"unknown key(s) {', '.join(sorted(unknown))}; allowed: id, level, text, seconds"))
            continue
        pid, level, body = entry["id"], entry["level"], entry["text"]
        if not isinstance(pid, str) or not ID_PATTERN.match(pid):
            problems.append(PackProblem(path, line, f"id must be lower-case letters, digits, '-', '.', '_', not {pid!r}"))
            continue
        if level not in LEVELS:
            problems.append(PackProblem(path, line, f"level must be one of {', '.join(LEVELS)}, not {level!r}"))
            continue
        if not isinstance(body, str) or not body.strip():
            problems.append(PackProblem(path, line, f"phrase {pid} has empty text"))
            continue
        seconds = entry.get("seconds")
        low, high = TIMER_SECONDS
        if seconds is not None and not (isinstance(seconds, int) and not isinstance(seconds, bool) and low <= seconds <= high):
            problems.append(PackProblem(path, line, f"phrase {pid}: seconds must be a whole number from {low} to {high}, not {seconds!r}; fix or remove it"))
            continue
        phrases.append(Phrase(pid, kind, category, level, " ".join(body.split()), f"{path}:{line}", seconds))
    return phrases, problems


def pack_files(dirs: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for folder in dirs:
        if folder.is_file():
            files.append(folder)
        elif folder.is_dir():
            files.extend(p for p in sorted(folder.glob(PACK_GLOB)) if p.name not in NOT_A_PACK)
    return files


def check_packs(dirs: Iterable[Path]) -> tuple[list[Phrase], list[PackProblem]]:
    """Load every pack in dirs; duplicate ids across files are problems too."""
    phrases: list[Phrase] = []
    problems: list[PackProblem] = []
    seen: dict[str, Phrase] = {}
    for path in pack_files(dirs):
        found, bad = parse_pack(path)
        problems.extend(bad)
        for phrase in found:
            if phrase.id in seen:
                file, _, line = phrase.source.rpartition(":")
                problems.append(PackProblem(Path(file), int(line), f"duplicate id {phrase.id} (first at {seen[phrase.id].source})"))
                continue
            seen[phrase.id] = phrase
            phrases.append(phrase)
    return phrases, problems


def load_library(dirs: Iterable[Path]) -> list[Phrase]:
    """All phrases from the given folders; raises PackError on any problem."""
    phrases, problems = check_packs(dirs)
    if problems:
        raise PackError(problems)
    return phrases


@dataclass(frozen=True)
class ContentFilter:
    """Which phrases are on. The sexual category and the timed moments are off unless named in include."""

    categories: frozenset[str] | None = None  # None: every category except opt-in ones
    levels: frozenset[str] = frozenset(LEVELS)
    include: frozenset[str] = frozenset()  # opt-in categories turned on

    OPT_IN = frozenset({"sexual", "moments"})

    def allows(self, phrase: Phrase) -> bool:
        if phrase.level not in self.levels:
            return False
        if phrase.category in self.OPT_IN and phrase.category not in self.include:
            return False
        if self.categories is not None and phrase.category not in self.categories | self.include:
            return False
        return True


class PhraseBag:
    """A shuffled bag per kind: a phrase comes back only after every enabled phrase of its kind.

    The bag's order and position are saved in a small JSON state file (phrase ids only)
    so that it survives restarts. A corrupt or unwritable state file never stops the skill.
    """

    def __init__(self, phrases: list[Phrase], state_file: Path | None = None, rng: random.Random | None = None):
        self._by_id = {p.id: p for p in phrases}
        self._rng = rng or random.Random()
        self._state_file = state_file
        self._persist = state_file is not None
        self._bags: dict[str, dict] = {}
        self._last: dict[str, str] = {}
        self._load()

    def kinds(self) -> list[str]:
        return sorted({p.kind for p in self._by_id.values()})

    def _ids_of(self, kind: str) -> list[str]:
        return sorted(pid for pid, p in self._by_id.items() if p.kind == kind)

    def _load(self) -> None:
        if not self._state_file:
            return
        try:
            raw = self._state_file.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read the phrase state file %s (%s); starting a fresh bag", self._state_file, exc.strerror)
            return
        try:
            data = json.loads(raw)
            bags = data["bags"]
            for kind, bag in bags.items():
                order, position = bag["order"], bag["position"]
                if not (isinstance(order, list) and all(isinstance(i, str) for i in order) and isinstance(position, int)):
                    raise ValueError(kind)
                self._bags[kind] = {"order": order, "position": position}
            last = data.get("last", {})
            self._last = {k: v for k, v in last.items() if isinstance(k, str) and isinstance(v, str)}
        except (ValueError, KeyError, TypeError, AttributeError):  # UnicodeDecodeError is a ValueError
            log.warning("the phrase state file %s is corrupt; starting a fresh bag", self._state_file)
            self._bags = {}
            self._last = {}

    def _save(self) -> None:
        if not self._persist or self._state_file is None:
            return
        data = json.dumps({"version": 1, "bags": self._bags, "last": self._last}, indent=1)
        try:
            write_atomically(self._state_file, data)
        except OSError as exc:
            log.warning("cannot save the phrase state to %s (%s); phrases may repeat after a restart", self._state_file, exc.strerror)
            self._persist = False

    def _refilled(self, kind: str, enabled: list[str]) -> dict:
        order = list(enabled)
        self._rng.shuffle(order)
        last = self._last.get(kind)
        if len(order) > 1 and order[0] == last:
            swap = self._rng.randrange(1, len(order))
            order[0], order[swap] = order[swap], order[0]
        return {"order": order, "position": 0}

    def enabled(self, kind: str, allowed: ContentFilter) -> list[str]:
        return [pid for pid in self._ids_of(kind) if allowed.allows(self._by_id[pid])]

    def draw(self, kind: str, allowed: ContentFilter | None = None, level: str | None = None, avoid: frozenset[str] = frozenset()) -> Phrase:
        """The next phrase of the bag. `level` ("light" or "deeper") asks for that level and
        `avoid` holds ids not to say now (skipped ones); when nothing enabled fits, the level
        is given up first, then `avoid`, so an answer always comes."""
        pid, self._bags[kind] = self._next(kind, allowed, level, avoid)
        self._last[kind] = pid
        self._save()
        return self._by_id[pid]

    def peek(self, kind: str, allowed: ContentFilter | None = None, level: str | None = None, avoid: frozenset[str] = frozenset()) -> Phrase | None:
        """What draw() with these arguments would answer now, without drawing it (None if no
        phrase of the kind is enabled). The bag and its random state are left as they were, so
        the draw makes the same choice."""
        state = self._rng.getstate()
        try:
            pid, _ = self._next(kind, allowed, level, avoid)
        except UserError:
            return None
        finally:
            self._rng.setstate(state)
        return self._by_id[pid]

    def _next(self, kind: str, allowed: ContentFilter | None, level: str | None, avoid: frozenset[str]) -> tuple[str, dict]:
        """The next phrase id and the kind's bag after it was taken (a new dict: nothing changes)."""
        enabled = self.enabled(kind, allowed or ContentFilter())
        if not enabled:
            raise UserError(f"no {kind}s are enabled: check the [content] settings and the phrase packs")
        enabled_set = set(enabled)
        bag = self._bags.get(kind)
        if bag is None or set(bag["order"]) != enabled_set:
            # New library or changed settings: what was used this round stays used.
            used = [pid for pid in (bag["order"][: bag["position"]] if bag else []) if pid in enabled_set]
            rest = [pid for pid in enabled if pid not in used]
            self._rng.shuffle(rest)
            bag = {"order": used + rest, "position": len(used)}
        fitting = self._fitting(enabled, level, avoid)
        remaining = [pid for pid in bag["order"][bag["position"] :] if pid in fitting]
        if not remaining:
            bag = self._refilled(kind, enabled)
            remaining = [pid for pid in bag["order"] if pid in fitting]
        pid = remaining[0]
        order, position = list(bag["order"]), bag["position"]
        found = order.index(pid, position)
        order[position], order[found] = order[found], order[position]
        return pid, {"order": order, "position": position + 1}

    def _fitting(self, enabled: list[str], level: str | None, avoid: frozenset[str]) -> set[str]:
        for wanted_level, avoided in ((level, avoid), (None, avoid), (None, frozenset())):
            fitting = {pid for pid in enabled if pid not in avoided and wanted_level in (None, self._by_id[pid].level)}
            if fitting:
                return fitting
        return set(enabled)

    def timed_ids(self) -> frozenset[str]:
        return frozenset(pid for pid, p in self._by_id.items() if p.seconds is not None)

    def get(self, phrase_id: str) -> Phrase | None:
        return self._by_id.get(phrase_id)
