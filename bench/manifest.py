"""What was said where: the corpus manifest (JSON) and its types."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

TRIGGER = "trigger"  # a wake phrase: must fire its intent
NEAR_MISS = "near_miss"  # sounds like a wake phrase: must not fire
ORDINARY = "ordinary"  # television or conversation: must not fire
LEAD_IN = "lead_in"  # the sentence just before a phrase in the run-on conditions: must not fire
FOLLOW_UP = "follow_up"  # a follow-up command said inside the follow-up window: must act (its intent)
OUTSIDE = "outside"  # a follow-up command said outside any follow-up window: must not act

# Near-miss groups (Span.group)
LISTED = "listed"  # bench.corpus.NEAR_MISSES (many are the program's decoys) or, in dev mode, the dev list
HELD_OUT = "held_out"  # bench/heldout_near_misses.txt: in no decoy list, confusion set or training data

TRIGGERS_FILE = "triggers"  # one condition x voice: wake phrases and near misses, interleaved
ORDINARY_FILE = "ordinary"  # ordinary speech only
NIGHT_FILE = "night"  # long quiet room tone with a few phrases
FOLLOWUPS_FILE = "followups"  # one voice: wake phrases with follow-up commands in their windows, and commands outside


@dataclass(frozen=True)
class Span:
    text: str
    start: float  # seconds into the file
    end: float  # end of the (dry) speech
    role: str  # TRIGGER, NEAR_MISS, ORDINARY, LEAD_IN, FOLLOW_UP or OUTSIDE
    voice: str
    condition: str
    intent: str | None = None  # the expected intent (triggers and follow-ups; outside: the command's own)
    group: str | None = None  # near misses: LISTED or HELD_OUT


@dataclass(frozen=True)
class AudioFile:
    name: str
    path: str  # relative to the manifest's folder
    kind: str  # TRIGGERS_FILE, ORDINARY_FILE, NIGHT_FILE or FOLLOWUPS_FILE
    duration: float
    spans: tuple[Span, ...]
    condition: str = ""
    voice: str = ""
    part: int = 0  # ordinary speech: which part of the voice's share (1, 2, ...); follow-ups: which take

    def spans_with(self, role: str) -> tuple[Span, ...]:
        return tuple(s for s in self.spans if s.role == role)


@dataclass(frozen=True)
class Manifest:
    seed: int
    spec: dict
    files: tuple[AudioFile, ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Manifest:
        data = json.loads(text)
        files = tuple(
            AudioFile(**{**f, "spans": tuple(Span(**s) for s in f["spans"])}) for f in data["files"]
        )
        return Manifest(seed=data["seed"], spec=data["spec"], files=files)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", "utf-8")

    @staticmethod
    def read(path: Path) -> Manifest:
        return Manifest.from_json(path.read_text("utf-8"))
