"""Scoring: the manifest's spans against a program's wake events. Pure functions, no I/O.

A wake event is matched to the span whose window [start, end + TAIL] holds its time `at`:
- on a wake phrase: the first event decides: the right intent is a true accept (its delay is
  `at` - end of the phrase), another intent a wrong intent; later events there are duplicates;
- on a near miss: a near-miss false accept;
- anywhere else in an ordinary-speech file: an ordinary false accept (counted per hour);
- anywhere else: an "other" false accept (room tone, silence between phrases, a run-on
  lead-in).
Every event is counted exactly once; a phrase with no event in its window is a miss.

Only wakes of the wake intents (question, tip) are wakes. Any other command that acts (a
`wake` event of another intent, such as "louder" or "another", or a `voice` event) is a
stray command: the corpus holds no follow-up or voice command, so every one is an error,
wherever it happens. `ignored` events are commands correctly not acted on: not counted.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from bench.manifest import NEAR_MISS, ORDINARY_FILE, TRIGGER, AudioFile, Span

TAIL = 1.5  # seconds after the end of a phrase in which its wake may still come
WAKE_INTENTS = ("question", "tip")

ACCEPTED = "accepted"
WRONG_INTENT = "wrong_intent"
MISSED = "missed"

FA_NEAR_MISS = "near_miss"
FA_ORDINARY = "ordinary"
FA_DUPLICATE = "duplicate"
FA_OTHER = "other"


@dataclass(frozen=True)
class Wake:
    intent: str
    at: float


@dataclass(frozen=True)
class TriggerResult:
    span: Span
    outcome: str  # ACCEPTED, WRONG_INTENT or MISSED
    delay: float | None = None  # seconds after the end of the phrase (accepted only)
    heard: str | None = None  # the intent that fired (accepted or wrong)


@dataclass(frozen=True)
class FalseAccept:
    wake: Wake
    kind: str  # FA_NEAR_MISS, FA_ORDINARY, FA_DUPLICATE or FA_OTHER
    span: Span | None = None


@dataclass(frozen=True)
class Stray:
    """A command other than a wake that acted."""

    intent: str  # e.g. "louder", "another", "stop"
    at: float
    event: str  # "wake" or "voice"


@dataclass(frozen=True)
class StrayCommand:
    stray: Stray
    span: Span | None  # what was being said (or had just been said), if anything


@dataclass(frozen=True)
class FileScore:
    file: AudioFile
    triggers: tuple[TriggerResult, ...]
    false_accepts: tuple[FalseAccept, ...]
    strays: tuple[StrayCommand, ...] = ()


def wakes_from_events(events: Iterable[dict]) -> list[Wake]:
    """The wakes of a run (the program's JSON lines, already parsed): wake events of the wake
    intents only."""
    return [Wake(str(e["intent"]), float(e["at"])) for e in events if e.get("event") == "wake" and e.get("intent") in WAKE_INTENTS]


def strays_from_events(events: Iterable[dict]) -> list[Stray]:
    """Commands other than question and tip that acted: `wake` events of another intent, and
    `voice` events (the program announces a voice change with a wake event and then a voice
    event at the same time: counted once)."""
    strays: list[Stray] = []
    for e in events:
        kind = e.get("event")
        if kind == "wake" and e.get("intent") not in WAKE_INTENTS:
            strays.append(Stray(str(e.get("intent")), float(e.get("at", -1.0)), "wake"))
        elif kind == "voice":
            at = float(e.get("at", -1.0))
            if not any(s.event == "wake" and s.at == at for s in strays):
                strays.append(Stray(str(e.get("change")), at, "voice"))
    return strays


def in_window(span: Span, at: float, tail: float = TAIL) -> bool:
    return span.start <= at <= span.end + tail


def locate(file: AudioFile, at: float, tail: float = TAIL) -> Span | None:
    """The span being said (or just said) at `at`: a phrase before a lead-in or ordinary speech."""
    holders = [s for s in file.spans if in_window(s, at, tail)]
    for role in (TRIGGER, NEAR_MISS):
        for s in holders:
            if s.role == role:
                return s
    return holders[0] if holders else None


def score_events(file: AudioFile, events: Sequence[dict], tail: float = TAIL) -> FileScore:
    """A run's events on a file: wakes scored, stray commands located."""
    return score_file(file, wakes_from_events(events), tail, strays_from_events(events))


def score_file(file: AudioFile, wakes: Sequence[Wake], tail: float = TAIL, strays: Sequence[Stray] = ()) -> FileScore:
    first: dict[int, Wake] = {}  # index of a wake-phrase span -> the event that decided it
    false_accepts: list[FalseAccept] = []
    for wake in sorted(wakes, key=lambda w: w.at):
        holders = [(i, s) for i, s in enumerate(file.spans) if in_window(s, wake.at, tail)]
        open_triggers = [i for i, s in holders if s.role == TRIGGER and i not in first]
        if open_triggers:
            first[open_triggers[0]] = wake
        elif any(s.role == TRIGGER for _, s in holders):
            false_accepts.append(FalseAccept(wake, FA_DUPLICATE, next(s for _, s in holders if s.role == TRIGGER)))
        elif any(s.role == NEAR_MISS for _, s in holders):
            false_accepts.append(FalseAccept(wake, FA_NEAR_MISS, next(s for _, s in holders if s.role == NEAR_MISS)))
        elif file.kind == ORDINARY_FILE:
            false_accepts.append(FalseAccept(wake, FA_ORDINARY, holders[0][1] if holders else None))
        else:
            false_accepts.append(FalseAccept(wake, FA_OTHER, holders[0][1] if holders else None))
    results = []
    for i, span in enumerate(file.spans):
        if span.role != TRIGGER:
            continue
        wake = first.get(i)
        if wake is None:
            results.append(TriggerResult(span, MISSED))
        elif wake.intent == span.intent:
            results.append(TriggerResult(span, ACCEPTED, round(wake.at - span.end, 3), wake.intent))
        else:
            results.append(TriggerResult(span, WRONG_INTENT, None, wake.intent))
    located = tuple(StrayCommand(s, locate(file, s.at, tail)) for s in sorted(strays, key=lambda s: s.at))
    return FileScore(file, tuple(results), tuple(false_accepts), located)


# ------------------------------------------------------------------ aggregates


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Rate:
    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None


def accept_rate(results: Iterable[TriggerResult]) -> Rate:
    results = list(results)
    return Rate(sum(r.outcome == ACCEPTED for r in results), len(results))


@dataclass(frozen=True)
class DelayStats:
    count: int
    median: float | None
    p90: float | None


def delay_stats(results: Iterable[TriggerResult]) -> DelayStats:
    delays = [r.delay for r in results if r.outcome == ACCEPTED and r.delay is not None]
    return DelayStats(len(delays), statistics.median(delays) if delays else None, percentile(delays, 90))


@dataclass(frozen=True)
class Totals:
    """Everything one system did on a set of files."""

    scores: tuple[FileScore, ...] = field(default=())

    def triggers(self, condition: str | None = None, voice: str | None = None, voices: Sequence[str] | None = None) -> list[TriggerResult]:
        return [
            r
            for s in self.scores
            for r in s.triggers
            if (condition is None or r.span.condition == condition)
            and (voice is None or r.span.voice == voice)
            and (voices is None or r.span.voice in voices)
        ]

    def false_accepts(self, kind: str) -> list[FalseAccept]:
        return [fa for s in self.scores for fa in s.false_accepts if fa.kind == kind]

    def wrong_intents(self) -> int:
        return sum(r.outcome == WRONG_INTENT for r in self.triggers())

    def near_miss_count(self, leaving_out: frozenset[str] = frozenset()) -> int:
        return sum(span.text not in leaving_out for s in self.scores for span in s.file.spans_with(NEAR_MISS))

    def near_miss_spans(self) -> list[Span]:
        return [span for s in self.scores for span in s.file.spans_with(NEAR_MISS)]

    def strays(self, kind: str | None = None) -> list[StrayCommand]:
        """Stray commands, all or those in files of one kind."""
        return [x for s in self.scores for x in s.strays if kind is None or s.file.kind == kind]

    def strays_per_hour(self) -> float | None:
        """Stray commands in ordinary-speech files per hour of ordinary speech."""
        return per_hour(len(self.strays(ORDINARY_FILE)), self.ordinary_hours())

    def ordinary_hours(self) -> float:
        return sum(s.file.duration for s in self.scores if s.file.kind == ORDINARY_FILE) / 3600

    def false_accepts_per_hour(self) -> float | None:
        return per_hour(len(self.false_accepts(FA_ORDINARY)), self.ordinary_hours())


def per_hour(count: int, hours: float) -> float | None:
    return count / hours if hours > 0 else None
