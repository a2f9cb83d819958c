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
command. In the follow-up files a command said inside the follow-up window (a FOLLOW_UP span)
is decided like a wake phrase: the first command in [start, end + TAIL] is recognised if its
intent is right, a wrong command otherwise; with none, it is "no window" if the program heard
it and ignored it because no window was open (the wake phrase or command before it was
missed: an earlier miss, not this command's), else missed. Every other command is a stray
command (a second one on the same span, one in a gap, one on a command said outside any
window, one anywhere in the other files, which ask for none): every one is an error, wherever
it happens. Other `ignored` events are commands correctly not acted on: not counted.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from bench.manifest import FOLLOW_UP, NEAR_MISS, ORDINARY_FILE, OUTSIDE, TRIGGER, AudioFile, Span

TAIL = 1.5  # seconds after the end of a phrase in which its wake may still come
WAKE_INTENTS = ("question", "tip")

ACCEPTED = "accepted"
WRONG_INTENT = "wrong_intent"
MISSED = "missed"
NO_WINDOW = "no_window"  # a follow-up heard and ignored: no window was open (an earlier miss)
NO_WINDOW_REASON = "no follow-up window"  # the program's `ignored` reason

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
class FollowUpResult:
    """A follow-up command said inside the window: recognised (ACCEPTED), WRONG_INTENT (another
    command acted), NO_WINDOW (heard, but the window had not opened) or MISSED."""

    span: Span
    outcome: str
    delay: float | None = None  # seconds after the end of the command (recognised only)
    heard: str | None = None  # the command that acted


@dataclass(frozen=True)
class Ignored:
    """A command the program heard and did not act on, and why."""

    intent: str
    at: float
    reason: str


@dataclass(frozen=True)
class FileScore:
    file: AudioFile
    triggers: tuple[TriggerResult, ...]
    false_accepts: tuple[FalseAccept, ...]
    strays: tuple[StrayCommand, ...] = ()
    follow_ups: tuple[FollowUpResult, ...] = ()
    outside_ignored: tuple[Span, ...] = ()  # commands said outside any window, heard and rightly ignored


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


def ignored_from_events(events: Iterable[dict]) -> list[Ignored]:
    """Commands heard and not acted on (`ignored` events)."""
    return [Ignored(str(e.get("intent")), float(e.get("at", -1.0)), str(e.get("reason"))) for e in events if e.get("event") == "ignored"]


def in_window(span: Span, at: float, tail: float = TAIL) -> bool:
    return span.start <= at <= span.end + tail


def locate(file: AudioFile, at: float, tail: float = TAIL) -> Span | None:
    """The span being said (or just said) at `at`: a phrase before a lead-in or ordinary speech."""
    holders = [s for s in file.spans if in_window(s, at, tail)]
    for role in (TRIGGER, NEAR_MISS, FOLLOW_UP, OUTSIDE):
        for s in holders:
            if s.role == role:
                return s
    return holders[0] if holders else None


def score_events(file: AudioFile, events: Sequence[dict], tail: float = TAIL) -> FileScore:
    """A run's events on a file: wakes scored, follow-ups decided, stray commands located."""
    return score_file(file, wakes_from_events(events), tail, strays_from_events(events), ignored_from_events(events))


def score_file(file: AudioFile, wakes: Sequence[Wake], tail: float = TAIL, strays: Sequence[Stray] = (), ignored: Sequence[Ignored] = ()) -> FileScore:
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
    follow_ups, strays = score_follow_ups(file, strays, ignored, tail)
    located = tuple(StrayCommand(s, locate(file, s.at, tail)) for s in strays)
    heard = lambda span: any(x.intent == span.intent and in_window(span, x.at, tail) for x in ignored)  # noqa: E731
    return FileScore(file, tuple(results), tuple(false_accepts), located, follow_ups, tuple(s for s in file.spans_with(OUTSIDE) if heard(s)))


def score_follow_ups(
    file: AudioFile, commands: Sequence[Stray], ignored: Sequence[Ignored] = (), tail: float = TAIL
) -> tuple[tuple[FollowUpResult, ...], list[Stray]]:
    """The commands that acted, against the follow-up commands said inside a window: the first
    command in a FOLLOW_UP span's [start, end + tail] decides it; every other command is a
    stray. A span with none is NO_WINDOW if its command was heard and ignored for want of a
    window, else MISSED. Returns the result of each FOLLOW_UP span and the strays, in time order."""
    first: dict[int, Stray] = {}
    strays: list[Stray] = []
    for command in sorted(commands, key=lambda c: c.at):
        open_spans = [i for i, s in enumerate(file.spans) if s.role == FOLLOW_UP and i not in first and in_window(s, command.at, tail)]
        if open_spans:
            first[open_spans[0]] = command
        else:
            strays.append(command)
    results = []
    for i, span in enumerate(file.spans):
        if span.role != FOLLOW_UP:
            continue
        command = first.get(i)
        if command is None:
            no_window = any(x.intent == span.intent and x.reason == NO_WINDOW_REASON and in_window(span, x.at, tail) for x in ignored)
            results.append(FollowUpResult(span, NO_WINDOW if no_window else MISSED))
        elif command.intent == span.intent:
            results.append(FollowUpResult(span, ACCEPTED, round(command.at - span.end, 3), command.intent))
        else:
            results.append(FollowUpResult(span, WRONG_INTENT, None, command.intent))
    return tuple(results), strays


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


def accept_rate(results: Iterable[TriggerResult | FollowUpResult]) -> Rate:
    results = list(results)
    return Rate(sum(r.outcome == ACCEPTED for r in results), len(results))


@dataclass(frozen=True)
class DelayStats:
    count: int
    median: float | None
    p90: float | None


def delay_stats(results: Iterable[TriggerResult | FollowUpResult]) -> DelayStats:
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

    def follow_ups(self, voices: Sequence[str] | None = None, intent: str | None = None) -> list[FollowUpResult]:
        """Follow-up commands said inside a window, of some voices or one intent."""
        return [r for s in self.scores for r in s.follow_ups if (voices is None or r.span.voice in voices) and (intent is None or r.span.intent == intent)]

    def outside_spans(self) -> list[Span]:
        """Follow-up commands said outside any window (they must not act)."""
        return [span for s in self.scores for span in s.file.spans_with(OUTSIDE)]

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
