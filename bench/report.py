"""From scored runs to a per-system summary, the JSON file and the fixed-width table."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

from bench.audio import FLITE_VOICES
from bench.manifest import NIGHT_FILE, ORDINARY_FILE, TRIGGERS_FILE, Manifest
from bench.measure import Run
from bench.score import (
    FA_DUPLICATE,
    FA_NEAR_MISS,
    FA_ORDINARY,
    FA_OTHER,
    MISSED,
    WRONG_INTENT,
    DelayStats,
    FileScore,
    Rate,
    Totals,
    accept_rate,
    delay_stats,
)

FLITE = tuple(v.name for v in FLITE_VOICES)


@dataclass(frozen=True)
class Target:
    text: str  # as printed
    op: str  # ">=" or "<="
    value: float

    def met(self, x: float | None) -> bool | None:
        if x is None:
            return None
        return x >= self.value if self.op == ">=" else x <= self.value


# What the default engine is measured against (the targets).
TARGETS: dict[str, Target] = {
    "ta_flite": Target(">= 97 %", ">=", 0.97),
    "ta_clean": Target(">= 99 %", ">=", 0.99),
    "ta_soft": Target(">= 99 %", ">=", 0.99),
    "ta_reverb": Target(">= 99 %", ">=", 0.99),
    "ta_tempo0.9": Target(">= 99 %", ">=", 0.99),
    "ta_tempo1.1": Target(">= 99 %", ">=", 0.99),
    "ta_fan5": Target(">= 90 %", ">=", 0.90),
    "wrong_intents": Target("0", "<=", 0),
    "near_miss_false_accepts": Target("0", "<=", 0),
    "false_accepts_per_hour": Target("<= 0.1 /h", "<=", 0.1),
    "delay_p90": Target("<= 0.5 s", "<=", 0.5),
    "first_audio_ms": Target("<= 150 ms", "<=", 150),
    "rtf_speech": Target("<= 0.03", "<=", 0.03),
    "rtf_night": Target("~0 (<=0.005)", "<=", 0.005),
    "peak_rss_mb": Target("<= 150 MB", "<=", 150),
    "start_to_listening_max": Target("<= 2 s", "<=", 2.0),
}


@dataclass(frozen=True)
class SystemSummary:
    key: str
    label: str
    engine: str
    ta_flite: Rate
    ta_by_condition: dict[str, Rate]  # flite voices, trigger files
    ta_by_voice: dict[str, Rate]  # all conditions, trigger files
    ta_night: Rate
    wrong_intents: int
    near_miss_false_accepts: int
    near_misses: int
    held_out_near_miss_false_accepts: int  # on near misses that are not in the decoy list
    held_out_near_misses: int
    ordinary_false_accepts: int
    ordinary_hours: float
    false_accepts_per_hour: float | None
    other_false_accepts: int  # room tone, silence between phrases
    duplicate_wakes: int
    delay: DelayStats
    rtf_speech: float | None  # ordinary-speech files
    rtf_triggers: float | None  # trigger files (about a third speech)
    rtf_night: float | None  # the night file (room tone)
    cpu_seconds: float
    audio_seconds: float
    peak_rss_mb: float | None
    start_to_listening_median: float | None
    start_to_listening_max: float | None
    first_audio_ms: float | None  # median, when measured
    first_audio_note: str
    failed_runs: tuple[str, ...] = ()
    missed_phrases: dict[str, int] = field(default_factory=dict)  # "condition/voice: text" -> count
    false_accept_list: tuple[dict, ...] = ()

    def metric(self, key: str) -> float | None:
        """The number a target is checked against."""
        if key.startswith("ta_"):
            rate = self.ta_flite if key == "ta_flite" else self.ta_by_condition.get(key[3:])
            return rate.value if rate else None
        if key == "delay_p90":
            return self.delay.p90
        return getattr(self, key)


def rtf(runs: Sequence[Run]) -> float | None:
    audio = sum(r.audio_seconds for r in runs)
    return sum(r.cpu_seconds for r in runs) / audio if audio else None


@dataclass(frozen=True)
class Scored:
    run: Run
    score: FileScore


def summarize(key: str, label: str, scored: Sequence[Scored], first_audio: tuple[float | None, str], decoys: frozenset[str] = frozenset()) -> SystemSummary:
    """One system's figures over all its runs. Near misses whose sentence is one of the
    program's decoys are also counted apart: those the program was told about."""
    runs = [x.run for x in scored]
    scores = [x.score for x in scored]
    totals = Totals(tuple(scores))
    conditions = list(dict.fromkeys(s.file.condition for s in scores if s.file.kind == TRIGGERS_FILE))
    voices = list(dict.fromkeys(s.file.voice for s in scores if s.file.kind == TRIGGERS_FILE))
    in_trigger_files = [r for s in scores if s.file.kind == TRIGGERS_FILE for r in s.triggers]
    runs_of = {kind: [x.run for x in scored if x.score.file.kind == kind] for kind in (TRIGGERS_FILE, ORDINARY_FILE, NIGHT_FILE)}
    listening = [r.start_to_listening for r in runs if r.start_to_listening is not None]
    engines = {e.get("engine") for r in runs for e in r.events if e.get("event") == "listening"}
    missed = Counter(f"{r.span.condition}/{r.span.voice}: {r.span.text}" for s in scores for r in s.triggers if r.outcome in (MISSED, WRONG_INTENT))
    return SystemSummary(
        key=key,
        label=label,
        engine=", ".join(sorted(e for e in engines if e)) or "?",
        ta_flite=accept_rate(r for r in in_trigger_files if r.span.voice in FLITE),
        ta_by_condition={c: accept_rate(r for r in in_trigger_files if r.span.condition == c and r.span.voice in FLITE) for c in conditions},
        ta_by_voice={v: accept_rate(r for r in in_trigger_files if r.span.voice == v) for v in voices},
        ta_night=accept_rate(r for s in scores if s.file.kind == NIGHT_FILE for r in s.triggers),
        wrong_intents=totals.wrong_intents(),
        near_miss_false_accepts=len(totals.false_accepts(FA_NEAR_MISS)),
        near_misses=totals.near_miss_count(),
        held_out_near_miss_false_accepts=sum(fa.span.text not in decoys for fa in totals.false_accepts(FA_NEAR_MISS)),
        held_out_near_misses=totals.near_miss_count(leaving_out=decoys),
        ordinary_false_accepts=len(totals.false_accepts(FA_ORDINARY)),
        ordinary_hours=round(totals.ordinary_hours(), 4),
        false_accepts_per_hour=totals.false_accepts_per_hour(),
        other_false_accepts=len(totals.false_accepts(FA_OTHER)),
        duplicate_wakes=len(totals.false_accepts(FA_DUPLICATE)),
        delay=delay_stats(totals.triggers()),
        rtf_speech=rtf(runs_of[ORDINARY_FILE]),
        rtf_triggers=rtf(runs_of[TRIGGERS_FILE]),
        rtf_night=rtf(runs_of[NIGHT_FILE]),
        cpu_seconds=round(sum(r.cpu_seconds for r in runs), 2),
        audio_seconds=round(sum(r.audio_seconds for r in runs), 2),
        peak_rss_mb=round(max(r.peak_rss_mb for r in runs), 1) if runs else None,
        start_to_listening_median=statistics.median(listening) if listening else None,
        start_to_listening_max=max(listening) if listening else None,
        first_audio_ms=first_audio[0],
        first_audio_note=first_audio[1],
        failed_runs=tuple(f"{r.file} (exit {r.returncode}): {r.stderr_tail.strip().splitlines()[-1] if r.stderr_tail.strip() else ''}" for r in runs if not r.ok),
        missed_phrases=dict(missed.most_common()),
        false_accept_list=tuple(
            {"file": s.file.name, "at": fa.wake.at, "intent": fa.wake.intent, "kind": fa.kind, "near": fa.span.text if fa.span else None}
            for s in scores
            for fa in s.false_accepts
        ),
    )


# ------------------------------------------------------------------ the table


def pct(rate: Rate | None) -> str:
    if rate is None or rate.value is None:
        return "-"
    return f"{100 * rate.value:5.1f}% {rate.hits}/{rate.total}"


def num(x: float | None, fmt: str, unit: str = "") -> str:
    return "-" if x is None else f"{x:{fmt}}{unit}"


@dataclass(frozen=True)
class Row:
    label: str
    cell: Callable[[SystemSummary], str]
    target: str | None = None  # key into TARGETS


def rows(conditions: Sequence[str], voices: Sequence[str]) -> list[Row]:
    table = [Row("TA, all flite conditions", lambda s: pct(s.ta_flite), "ta_flite")]
    table += [Row(f"TA {c} (flite)", lambda s, c=c: pct(s.ta_by_condition.get(c)), f"ta_{c}" if f"ta_{c}" in TARGETS else None) for c in conditions]
    table += [Row(f"TA voice {v} (all cond.)", lambda s, v=v: pct(s.ta_by_voice.get(v))) for v in voices]
    table += [
        Row("TA night (quiet voice)", lambda s: pct(s.ta_night)),
        Row("wrong intents", lambda s: str(s.wrong_intents), "wrong_intents"),
        Row("near-miss false accepts", lambda s: f"{s.near_miss_false_accepts} of {s.near_misses}", "near_miss_false_accepts"),
        Row("  of which not in decoy list", lambda s: f"{s.held_out_near_miss_false_accepts} of {s.held_out_near_misses}"),
        Row("FA / h ordinary speech", lambda s: f"{num(s.false_accepts_per_hour, '.2f')} ({s.ordinary_false_accepts} in {s.ordinary_hours:.2f} h)", "false_accepts_per_hour"),
        Row("other FA (room tone, gaps)", lambda s: str(s.other_false_accepts)),
        Row("duplicate wakes", lambda s: str(s.duplicate_wakes)),
        Row("delay after phrase, median", lambda s: num(s.delay.median, ".2f", " s")),
        Row("delay after phrase, p90", lambda s: num(s.delay.p90, ".2f", " s"), "delay_p90"),
        Row("detection to first audio", lambda s: num(s.first_audio_ms, ".0f", " ms") if s.first_audio_ms is not None else s.first_audio_note, "first_audio_ms"),
        Row("RTF ordinary speech", lambda s: num(s.rtf_speech, ".4f"), "rtf_speech"),
        Row("RTF trigger files", lambda s: num(s.rtf_triggers, ".4f")),
        Row("RTF night room tone", lambda s: num(s.rtf_night, ".4f"), "rtf_night"),
        Row("CPU s / audio s, all", lambda s: f"{s.cpu_seconds:.0f} / {s.audio_seconds:.0f}"),
        Row("peak RSS", lambda s: num(s.peak_rss_mb, ".0f", " MB"), "peak_rss_mb"),
        Row("start to listening, median", lambda s: num(s.start_to_listening_median, ".2f", " s")),
        Row("start to listening, max", lambda s: num(s.start_to_listening_max, ".2f", " s"), "start_to_listening_max"),
        Row("failed runs", lambda s: str(len(s.failed_runs))),
    ]
    return table


def verdict(summary: SystemSummary, target_key: str | None) -> str:
    if target_key is None:
        return ""
    met = TARGETS[target_key].met(summary.metric(target_key))
    return {True: "yes", False: "NO", None: "n/a"}[met]


def format_table(summaries: Sequence[SystemSummary]) -> str:
    """Rows are metrics; columns the systems, with the targets and whether the first meets them."""
    first = summaries[0]
    conditions = list(first.ta_by_condition)
    voices = list(first.ta_by_voice)
    header = ["metric", "target", *(s.label for s in summaries[:1]), "met", *(s.label for s in summaries[1:])]
    body = [
        [row.label, TARGETS[row.target].text if row.target else "", row.cell(first), verdict(first, row.target), *(row.cell(s) for s in summaries[1:])]
        for row in rows(conditions, voices)
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    fmt = lambda line: "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths))).rstrip()  # noqa: E731
    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule, *(fmt(line) for line in body)])


def near_miss_line(summary: SystemSummary, most: int = 8) -> str:
    """Which near misses and ordinary sentences fired, most often first."""
    fired = Counter(f"{fa['near'] or 'room tone'} -> {fa['intent']}" for fa in summary.false_accept_list if fa["kind"] != FA_DUPLICATE)
    if not fired:
        return f"{summary.label}: no false accepts"
    listed = ", ".join(f"{what} x{n}" for what, n in fired.most_common(most))
    more = f", ... ({len(fired) - most} more)" if len(fired) > most else ""
    return f"{summary.label} false accepts: {listed}{more}"


def summary_json(manifest: Manifest, summaries: Sequence[SystemSummary], meta: dict) -> dict:
    return {
        **meta,
        "targets": {k: asdict(t) for k, t in TARGETS.items()},
        "corpus": {
            "seed": manifest.seed,
            "files": len(manifest.files),
            "minutes": round(sum(f.duration for f in manifest.files) / 60, 1),
            "spec": manifest.spec,
        },
        "systems": {s.key: {**asdict(s), "targets_met": {k: TARGETS[k].met(s.metric(k)) for k in TARGETS}} for s in summaries},
    }
