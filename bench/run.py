"""The benchmark: build the corpus, run the systems on it side by side, score, report.

    python3 -m bench.run [--quick] [--systems old,v2,phonetic,neural,judge,fused,kws,lm]
                         [--baseline v2|old]
                         [--conditions clean,runon,...] [--voices slt,joe,...]
                         [--kinds triggers,ordinary,night,followups]
                         [--voice-set eval|dev] [--seed N] [--out DIR] [--jobs N]
    python3 bench/run.py ...

Systems: past programs run from git worktrees under bench/out/ (the old engine, commit
93bb090; v2, commit 972466b), the program with `--wake-signals phonetic`, `neural` and `judge`,
v3 (`fused`: the program with --judge; with no flag the program runs v2's engine), and two
naive PocketSphinx peers
(bench/peers.py). A system that cannot run here (no such --wake-signals choice yet, no such
commit) is skipped with a note. Every corpus file is one run of each system, a child process
measured on its own (bench/measure.py); the peers, which spot wake phrases only, do not run
on the follow-up files. v3 is checked against the targets and compared with a
baseline (--baseline: v2, else the old engine). Writes OUT/summary.json and prints one table.

`--voice-set dev` builds the corpus from the training helper's DEV voices and dev texts into
OUT/dev/: for picking thresholds, clearly not an evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python3 bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.audio import PIPER_VOICE, VOICES, dev_voices, dev_voices_missing, piper_missing  # noqa: E402
from bench.corpus import CONDITIONS, DEFAULT_OUT, DEV_SET, EVAL_SET, WAKE_INTENTS, CorpusSpec, build_corpus, trained_texts, trigger_table  # noqa: E402
from bench.manifest import FOLLOWUPS_FILE, NIGHT_FILE, ORDINARY_FILE, TRIGGERS_FILE, AudioFile, Manifest  # noqa: E402
from bench.measure import (  # noqa: E402
    KWS_PEER,
    LM_PEER,
    OLD_ENGINE,
    PAST_PROGRAMS,
    PROGRAM,
    REPO,
    SIGNAL_SYSTEMS,
    SYSTEM_ORDER,
    PastProgram,
    System,
    Unavailable,
    git_head,
    output_device_names,
    past_program,
    program_fingerprint,
    run_on_file,
    wake_signals_missing,
)
from bench.report import BASELINES, Scored, baseline_of, followup_line, format_table, near_miss_line, stray_line, summarize, summary_json, vs_title  # noqa: E402
from bench.score import score_events  # noqa: E402

NOT_APPLICABLE = (None, "-")
DEV_TITLE = "DEV (training voices): not an evaluation"


def worktree_dir(past: PastProgram) -> Path:
    """Where a past program's worktree lives (made on first use, reused after)."""
    return DEFAULT_OUT / past.folder


OLD_ENGINE_DIR = worktree_dir(OLD_ENGINE)  # training.tune_fusion runs the old engine from here too
ALL_SYSTEMS = SYSTEM_ORDER
FILE_KINDS = (TRIGGERS_FILE, ORDINARY_FILE, NIGHT_FILE, FOLLOWUPS_FILE)  # --kinds
CURRENT_SYSTEMS = (*SIGNAL_SYSTEMS, PROGRAM, KWS_PEER, LM_PEER)  # run from this checkout
SHORT_NAMES = {name: key for key, aliases in [(p.key, p.aliases) for p in PAST_PROGRAMS] + [(s.key, s.aliases) for s in CURRENT_SYSTEMS] for name in (key, *aliases)}
SYSTEMS_HELP = "old, v2, phonetic, neural, judge, fused (= v3: --judge), kws, lm"

# CPU seconds per audio second by kind of file, and start-up seconds, for the estimate before a
# first run (a later run uses the previous summary.json's measured figures instead). From the
# full run of 2026-11-26 on 2 busy cores (load average about 4); an idle machine is faster.
RTF_GUESS = {
    "old_engine": {"triggers": 0.12, "ordinary": 0.09, "night": 0.015, "followups": 0.12},
    "v2": {"triggers": 0.10, "ordinary": 0.14, "night": 0.03, "followups": 0.10},
    "phonetic": {"triggers": 0.10, "ordinary": 0.14, "night": 0.03, "followups": 0.10},
    "neural": {"triggers": 0.10, "ordinary": 0.14, "night": 0.03, "followups": 0.10},
    "judge": {"triggers": 0.20, "ordinary": 0.25, "night": 0.03, "followups": 0.20},  # a guess before its first full run
    "fused": {"triggers": 0.10, "ordinary": 0.14, "night": 0.03, "followups": 0.10},
    "kws_peer": {"triggers": 0.05, "ordinary": 0.045, "night": 0.045},
    "lm_peer": {"triggers": 0.21, "ordinary": 0.41, "night": 0.015},
}
START_GUESS = 1.5


@dataclass(frozen=True)
class Task:
    system: System
    file: AudioFile


@dataclass(frozen=True)
class Workspace:
    out: Path

    @property
    def corpus(self) -> Path:
        return self.out / "corpus"

    def sandbox_root(self, name: str) -> Path:
        return self.out / "sandbox" / name

    def log(self, name: str) -> Path:
        return self.out / "logs" / f"{name}.log"


def run_task(task: Task, ws: Workspace) -> Scored:
    name = f"{task.system.key}-{task.file.name}"
    run = run_on_file(
        task.system.command(ws.corpus / task.file.path),
        task.file.duration,
        task.system.sandbox(ws.sandbox_root(name)),
        ws.log(name),
        system=task.system.key,
        name=task.file.name,
        cwd=task.system.cwd,
    )
    return Scored(run, score_events(task.file, run.events))


def first_audio_probe(manifest: Manifest, ws: Workspace) -> tuple[float | None, str]:
    """Detection to first answer audio needs a speaker: measured only when there is one."""
    speakers = output_device_names()
    if not speakers:
        return None, "not measured (no output device)"
    file = next((f for f in manifest.files if f.kind == TRIGGERS_FILE), manifest.files[0])
    speaking = System("fused_speaking", "fused speaking", tuple(a for a in PROGRAM.argv if a != "--no-speak"))
    run = run_task(Task(speaking, file), ws).run
    values = [float(e["first_audio_ms"]) for e in run.events if e.get("event") == "say" and "first_audio_ms" in e]
    if not values:
        return None, f"not measured (no answer was played on {speakers[0]})"
    return statistics.median(values), f"median of {len(values)} answers on {speakers[0]}"


def files_for(system: System, manifest: Manifest) -> list[AudioFile]:
    """The files a system runs on: all, or (the LM peer) a documented subset."""
    return [
        f
        for f in manifest.files
        if not (f.kind == ORDINARY_FILE and system.ordinary_parts is not None and f.part > system.ordinary_parts)
        and not (f.kind == TRIGGERS_FILE and f.condition in system.skip_conditions)
        and not (f.kind == FOLLOWUPS_FILE and not system.follow_ups)
    ]


def subset_note(system: System, manifest: Manifest) -> str | None:
    """What part of the corpus a system skips, in words; None if it runs on everything."""
    said = []
    if system.ordinary_parts is not None:
        hours = sum(f.duration for f in manifest.files if f.kind == ORDINARY_FILE) / 3600
        mine = sum(f.duration for f in files_for(system, manifest) if f.kind == ORDINARY_FILE) / 3600
        said.append(f"ordinary-speech parts 1..{system.ordinary_parts} only ({mine:.2f} of {hours:.2f} h; its FA and stray rows are per its own hours)")
    skipped = sorted({f.condition for f in manifest.files if f.kind == TRIGGERS_FILE and f.condition in system.skip_conditions})
    if skipped:
        said.append(f"not run on the {', '.join(skipped)} trigger files (its TA overall leaves them out)")
    if not system.follow_ups and any(f.kind == FOLLOWUPS_FILE for f in manifest.files):
        said.append("not run on the follow-up files (it spots wake phrases only)")
    return "; ".join(said) or None


def unknown_intents(system: System, table) -> frozenset[str]:
    """Commands of the program's trigger table that a system run from another checkout (the old
    engine) has not got in its own phrases/triggers.toml."""
    from voice_skill.intents import load_triggers

    own = system.cwd / "phrases" / "triggers.toml"
    if system.cwd.resolve() == REPO.resolve() or not own.exists():
        return frozenset()
    theirs = load_triggers(own).intents
    return frozenset(i for i in table.intents if i not in theirs and i not in WAKE_INTENTS)


def run_all(tasks: list[Task], ws: Workspace, jobs: int) -> dict[tuple[str, str], Scored]:
    started = time.perf_counter()
    results: dict[tuple[str, str], Scored] = {}
    ordered = sorted(tasks, key=lambda t: -t.file.duration * RTF_GUESS.get(t.system.key, {}).get(t.file.kind, 0.08))  # longest first keeps both workers busy
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for n, (task, scored) in enumerate(zip(ordered, pool.map(lambda t: run_task(t, ws), ordered)), 1):
            results[(task.system.key, task.file.name)] = scored
            run = scored.run
            status = "" if run.ok else f"  FAILED (exit {run.returncode}, see {ws.log(task.system.key + '-' + task.file.name)})"
            print(
                f"[{n:4d}/{len(tasks)} {time.perf_counter() - started:6.0f}s] {task.system.label:20s} {task.file.name:32s} "
                f"rtf {run.rtf:.3f}  wakes {sum(e.get('event') == 'wake' for e in run.events):3d}{status}",
                file=sys.stderr,
                flush=True,
            )
    return results


def estimate(tasks: list[Task], jobs: int, previous: Path) -> tuple[float, str]:
    """Seconds of wall time the runs should take, and where the per-system figures came from."""
    rtf = {key: dict(kinds) for key, kinds in RTF_GUESS.items()}
    source = "guesses"
    if previous.exists():
        try:
            systems = json.loads(previous.read_text("utf-8")).get("systems", {})
            for key, s in systems.items():
                measured = {"triggers": s.get("rtf_triggers"), "ordinary": s.get("rtf_speech"), "night": s.get("rtf_night"), "followups": s.get("rtf_followups")}
                rtf.setdefault(key, {}).update({k: v for k, v in measured.items() if v is not None})
            if systems:
                source = f"the last run's CPU per audio second ({previous})"
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    cpu = sum(t.file.duration * rtf.get(t.system.key, {}).get(t.file.kind, 0.08) + START_GUESS for t in tasks)
    return cpu / max(1, min(jobs, os.cpu_count() or 1)), source


def system_for(key: str, notes: list[str]) -> System:
    """The system of a key (SYSTEM_ORDER), ready to run; Unavailable says why it cannot."""
    past = {p.key: p for p in PAST_PROGRAMS}
    if key in past:
        system, line = past_program(past[key], worktree_dir(past[key]), DEFAULT_OUT / "sandbox" / f"{past[key].folder}-check")
        notes.append(line)
        return system
    current = {s.key: s for s in CURRENT_SYSTEMS}[key]
    if current in SIGNAL_SYSTEMS:
        why = wake_signals_missing(current.key)
        if why:
            raise Unavailable(why)
    return current


def pick_systems(names: list[str], notes: list[str]) -> tuple[list[System], dict[str, str]]:
    """The systems asked for that can run here, and why the others cannot."""
    chosen, skipped = [], {}
    for key in names:
        try:
            chosen.append(system_for(key, notes))
        except Unavailable as exc:
            skipped[key] = str(exc)
    return chosen, skipped


def versus_line(summaries: list, baseline: PastProgram) -> str:
    """What the "vs" column compares, in words."""
    default = next((s for s in summaries if s.key == PROGRAM.key), None)
    compared = baseline_of(summaries, baseline.key)
    if default is None or compared is None or compared is default:
        return "No 'vs' column: it needs the default and a past program (v2 or the old engine) in the same run."
    instead = f" ({baseline.label} did not run)" if compared.key != baseline.key else ""
    return f"'{vs_title(compared)}': WORSE where the default is worse than {compared.label} in this run{instead}; times, CPU and memory only beyond 10 %."


def only_kinds(spec: CorpusSpec, kinds: list[str]) -> CorpusSpec:
    """The spec with only these kinds of file (FILE_KINDS) in it."""
    return replace(
        spec,
        conditions=spec.conditions if TRIGGERS_FILE in kinds else (),
        ordinary_minutes=spec.ordinary_minutes if ORDINARY_FILE in kinds else 0,
        night_minutes=spec.night_minutes if NIGHT_FILE in kinds else 0,
        followup_takes=spec.followup_takes if FOLLOWUPS_FILE in kinds else 0,
    )


def split(value: str | None) -> list[str] | None:
    return [x.strip() for x in value.split(",") if x.strip()] if value else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.run", description="Accuracy and speed of voice-skill's wake engines against its past engines and two naive peers.")
    parser.add_argument("--quick", action="store_true", help="a small slice of the corpus (a few minutes)")
    parser.add_argument("--systems", help=f"comma-separated, default all: {SYSTEMS_HELP}")
    parser.add_argument("--baseline", choices=[p.short for p in BASELINES], default=BASELINES[0].short,
                        help=f"the past program the default is compared with in the 'vs' column (default {BASELINES[0].short}; the other when it did not run)")
    parser.add_argument("--conditions", help=f"comma-separated subset of {','.join(c.name for c in CONDITIONS)}")
    parser.add_argument("--voices", help=f"comma-separated subset of {','.join(v.name for v in VOICES)} (dev: of the dev voices)")
    parser.add_argument("--kinds", help=f"comma-separated subset of the kinds of file, default all: {','.join(FILE_KINDS)}")
    parser.add_argument("--voice-set", choices=(EVAL_SET, DEV_SET), default=EVAL_SET, help="dev: the training helper's DEV voices and the dev texts, for tuning (not an evaluation)")
    parser.add_argument("--ordinary-minutes", type=float, help="minutes of ordinary speech (default 180; dev 45; quick 3)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: bench/out; dev: bench/out/dev)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs at a time (CPU time is measured per run)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    notes: list[str] = []

    # ---- the corpus spec
    dev = args.voice_set == DEV_SET
    if dev:
        missing = dev_voices_missing()
        if missing:
            print(f"--voice-set dev skipped: {missing}. The bench expects training/voices.py with DEV (a list of voices) and synthesize(text, voice, rate=..., cache=...) returning float32 16 kHz mono.", file=sys.stderr)
            return 0
        known_voices = [v.name for v in dev_voices()]
        spec = CorpusSpec.dev(quick=args.quick)
        ws = Workspace((args.out / "dev" if args.out == DEFAULT_OUT else args.out).resolve())
    else:
        known_voices = [v.name for v in VOICES]
        spec = CorpusSpec.quick() if args.quick else CorpusSpec()
        ws = Workspace(args.out.resolve())
    conditions = split(args.conditions)
    voices = split(args.voices)
    kinds = split(args.kinds)
    for given, known, what in ((conditions, [c.name for c in CONDITIONS], "condition"), (voices, known_voices, "voice"), (kinds, list(FILE_KINDS), "kind of file")):
        unknown = [x for x in given or [] if x not in known]
        if unknown:
            parser.error(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
    spec = replace(spec, conditions=tuple(conditions or spec.conditions), voices=tuple(voices or spec.voices))
    if args.ordinary_minutes is not None:
        spec = replace(spec, ordinary_minutes=args.ordinary_minutes)
    if kinds:
        spec = only_kinds(spec, kinds)
    if PIPER_VOICE.name in spec.voices and piper_missing():
        spec = replace(spec, voices=tuple(v for v in spec.voices if v != PIPER_VOICE.name))
        notes.append(f"Piper joe left out: {piper_missing()}")

    # ---- the systems
    names = split(args.systems) or list(ALL_SYSTEMS)
    unknown = [n for n in names if n not in SHORT_NAMES]
    if unknown:
        parser.error(f"unknown system {', '.join(unknown)}; known: {SYSTEMS_HELP}")
    wanted = [k for k in SYSTEM_ORDER if k in {SHORT_NAMES[n] for n in names}]
    systems, skipped = pick_systems(wanted, notes)
    for key, why in skipped.items():
        print(f"skipping {key}: {why}", file=sys.stderr, flush=True)
    if not systems:
        print("no system can run", file=sys.stderr)
        return 2

    # ---- the corpus
    program_before = program_fingerprint()
    print(f"building the corpus in {ws.corpus} (the first build synthesises every utterance; later ones come from {DEFAULT_OUT / 'cache'}) ...", file=sys.stderr, flush=True)
    manifest = build_corpus(spec, args.seed, ws.corpus, DEFAULT_OUT / "cache")
    corpus_seconds = time.perf_counter() - started
    table = trigger_table()
    trained, trained_sources = trained_texts(table)

    tasks = [Task(s, f) for s in systems for f in files_for(s, manifest)]
    wall, source = estimate(tasks, args.jobs, ws.out / "summary.json")
    audio_minutes = sum(t.file.duration for t in tasks) / 60
    print(
        f"corpus built in {corpus_seconds:.0f} s. {len(tasks)} runs, {audio_minutes:.0f} min of audio over {len(systems)} systems: "
        f"estimated {wall / 60:.0f} min of wall time with --jobs {args.jobs} ({source}; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
        file=sys.stderr,
        flush=True,
    )
    results = run_all(tasks, ws, max(1, args.jobs))
    first_audio = first_audio_probe(manifest, ws) if PROGRAM in systems else NOT_APPLICABLE
    unknown = {s.key: unknown_intents(s, table) for s in systems}
    summaries = [
        summarize(s.key, s.label, [results[(s.key, f.name)] for f in files_for(s, manifest)], first_audio if s is PROGRAM else NOT_APPLICABLE, trained, unknown[s.key])
        for s in systems
    ]
    elapsed = time.perf_counter() - started
    program_after = program_fingerprint()
    ordinary_hours = sum(f.duration for f in manifest.files if f.kind == ORDINARY_FILE) / 3600
    subsets = {s.key: note for s in systems if (note := subset_note(s, manifest))}
    meta = {
        "voice_set": args.voice_set,
        "label": DEV_TITLE if dev else "evaluation (held-out voices and texts)",
        "program": {"commit": git_head(), "fingerprint": program_before, "changed_during_run": program_after != program_before},
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "elapsed_seconds": round(elapsed, 1),
        "estimated_seconds": round(wall, 1),
        "corpus_build_seconds": round(corpus_seconds, 1),
        "manifest": str(ws.corpus / "manifest.json"),
        "systems_run": [s.key for s in systems],
        "systems_skipped": skipped,
        "system_commands": {s.key: {"argv": list(s.argv), "cwd": str(s.cwd), "first_on_path": list(s.first_on_path)} for s in systems},
        "subsets": subsets,
        "trained_near_miss_sources": trained_sources,
        "notes": notes,
    }
    baseline = next(p for p in BASELINES if p.short == args.baseline)
    path = ws.out / "summary.json"
    path.write_text(json.dumps(summary_json(manifest, summaries, meta, baseline.key), indent=1) + "\n", "utf-8")

    minutes = sum(f.duration for f in manifest.files) / 60
    print(f"\ncorpus: {len(manifest.files)} files, {minutes:.1f} min of audio ({ordinary_hours:.2f} h ordinary speech), seed {args.seed}{' (quick)' if args.quick else ''}")
    print("engines: " + ", ".join(f"{s.label} = {s.engine}" for s in summaries) + f"; program {meta['program']['commit']} ({program_before})")
    print(format_table(summaries, DEV_TITLE if dev else "", baseline.key))
    for s in summaries:
        print(near_miss_line(s))
        for line in (stray_line(s), followup_line(s)):
            if line:
                print(line)
    if dev:
        print(f"\nTA = true accepts. {DEV_TITLE}: the training helper's DEV voices and the dev texts (bench/dev_*.txt), for picking")
        print("thresholds. The target columns are for orientation only; only the held-out voices and texts (the default voice set) evaluate.")
    else:
        print("\nTA = true accepts. Targets (wake engine v3) are for the default, on the held-out voices (flite kal16, slt, rms, awb, Piper joe);")
        print("espeak-ng is a training family: reported, in no target.")
    print(versus_line(summaries, baseline))
    print("Near misses: 'decoys/training' = the program's decoys, its confusion sets or the training text (" + ", ".join(trained_sources) + "); 'held-out' = bench/heldout_near_misses.txt.")
    print("Stray command = a command other than question/tip that acted where nothing asked for one (anywhere but on a follow-up said inside its window).")
    if any(f.kind == FOLLOWUPS_FILE for f in manifest.files):
        print("Follow-ups (issue 12): every command but the wake phrases, said 2-3 s after a wake phrase or the command before (inside the 8 s window):")
        print("recognised = its intent acted within 1.5 s of its end; target >= 95 % on the flite voices. Also said outside any window (before the first")
        print("wake phrase, after 10-11 s of quiet): none may act (stray commands, follow-up files: target 0).")
    for key, missing in unknown.items():
        if missing and any(f.kind == FOLLOWUPS_FILE for f in files_for(next(s for s in systems if s.key == key), manifest)):
            print(f"{key}: has no {', '.join(sorted(missing))} command (its cells '-'); its follow-up rates count only the commands it has")
    for key, text in subsets.items():
        print(f"{key}: {text}")
    for key, why in skipped.items():
        print(f"{key}: skipped: {why}")
    for note in notes:
        print(f"note: {note}")
    print(f"{elapsed / 60:.1f} min in all ({corpus_seconds:.0f} s corpus; estimated {wall / 60:.0f} min for the runs); summary: {path}")
    for s in summaries:
        for failure in s.failed_runs:
            print(f"warning: {s.label} failed on {failure}", file=sys.stderr)
    if program_after != program_before:
        print("warning: voice_skill/ or phrases/triggers.toml changed during the run; runs may mix versions", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
