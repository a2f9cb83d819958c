"""The benchmark: build the corpus, run voice-skill and two naive peers on it, score, report.

    python3 -m bench.run [--quick] [--seed N] [--out DIR] [--jobs N]
    python3 bench/run.py ...

Every corpus file is one run of the real program (`python3 -m voice_skill run --input FILE
--no-speak --json`) and one run of each peer (bench/peers.py), each a child process measured
on its own (bench/measure.py). Writes OUT/summary.json and prints a fixed-width table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python3 bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import DEFAULT_OUT, CorpusSpec, build_corpus, trigger_table  # noqa: E402
from bench.manifest import TRIGGERS_FILE, AudioFile, Manifest  # noqa: E402
from bench.measure import PROGRAM, SYSTEMS, Sandbox, System, git_head, output_device_names, program_fingerprint, run_on_file  # noqa: E402
from bench.report import Scored, format_table, near_miss_line, summarize, summary_json  # noqa: E402
from bench.score import score_file, wakes_from_events  # noqa: E402

NOT_APPLICABLE = (None, "-")


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

    def sandbox(self, name: str) -> Sandbox:
        return Sandbox(self.out / "sandbox" / name)

    def log(self, name: str) -> Path:
        return self.out / "logs" / f"{name}.log"


def run_task(task: Task, ws: Workspace) -> Scored:
    name = f"{task.system.key}-{task.file.name}"
    run = run_on_file(
        task.system.command(ws.corpus / task.file.path),
        task.file.duration,
        ws.sandbox(name),
        ws.log(name),
        system=task.system.key,
        name=task.file.name,
    )
    return Scored(run, score_file(task.file, wakes_from_events(run.events)))


def first_audio_probe(manifest: Manifest, ws: Workspace) -> tuple[float | None, str]:
    """Detection to first answer audio needs a speaker: measured only when there is one."""
    speakers = output_device_names()
    if not speakers:
        return None, "not measured (no output device)"
    file = next(f for f in manifest.files if f.kind == TRIGGERS_FILE)
    speaking = System("voice_skill_speaking", "voice-skill speaking", tuple(a for a in PROGRAM.argv if a != "--no-speak"))
    run = run_task(Task(speaking, file), ws).run
    values = [float(e["first_audio_ms"]) for e in run.events if e.get("event") == "say" and "first_audio_ms" in e]
    if not values:
        return None, f"not measured (no answer was played on {speakers[0]})"
    return statistics.median(values), f"median of {len(values)} answers on {speakers[0]}"


def run_all(tasks: list[Task], ws: Workspace, jobs: int) -> dict[tuple[str, str], Scored]:
    started = time.perf_counter()
    results: dict[tuple[str, str], Scored] = {}
    ordered = sorted(tasks, key=lambda t: -t.file.duration)  # longest first keeps both workers busy
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for n, (task, scored) in enumerate(zip(ordered, pool.map(lambda t: run_task(t, ws), ordered)), 1):
            results[(task.system.key, task.file.name)] = scored
            run = scored.run
            status = "" if run.ok else f"  FAILED (exit {run.returncode}, see {ws.log(task.system.key + '-' + task.file.name)})"
            print(
                f"[{n:3d}/{len(tasks)} {time.perf_counter() - started:6.0f}s] {task.system.label:12s} {task.file.name:26s} "
                f"rtf {run.rtf:.3f}  wakes {sum(e.get('event') == 'wake' for e in run.events):3d}{status}",
                file=sys.stderr,
                flush=True,
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.run", description="Accuracy and speed of voice-skill against two naive peers.")
    parser.add_argument("--quick", action="store_true", help="a small slice of the corpus (a minute or two)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: bench/out)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="runs at a time (CPU time is measured per run)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    program_before = program_fingerprint()
    ws = Workspace(args.out.resolve())
    spec = CorpusSpec.quick() if args.quick else CorpusSpec()
    print(f"building the corpus in {ws.corpus} ...", file=sys.stderr, flush=True)
    manifest = build_corpus(spec, args.seed, ws.corpus, ws.out / "cache")
    corpus_seconds = time.perf_counter() - started

    decoys = frozenset(trigger_table().decoys)  # the program's; the peers have none
    results = run_all([Task(s, f) for s in SYSTEMS for f in manifest.files], ws, max(1, args.jobs))
    first_audio = first_audio_probe(manifest, ws)
    summaries = [
        summarize(s.key, s.label, [results[(s.key, f.name)] for f in manifest.files], first_audio if s is PROGRAM else NOT_APPLICABLE, decoys)
        for s in SYSTEMS
    ]
    elapsed = time.perf_counter() - started
    program_after = program_fingerprint()
    meta = {
        "program": {"commit": git_head(), "fingerprint": program_before, "changed_during_run": program_after != program_before},
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "elapsed_seconds": round(elapsed, 1),
        "corpus_build_seconds": round(corpus_seconds, 1),
        "manifest": str(ws.corpus / "manifest.json"),
    }
    path = ws.out / "summary.json"
    path.write_text(json.dumps(summary_json(manifest, summaries, meta), indent=1) + "\n", "utf-8")

    minutes = sum(f.duration for f in manifest.files) / 60
    print(f"\ncorpus: {len(manifest.files)} files, {minutes:.1f} min of audio, seed {args.seed}{' (quick)' if args.quick else ''}")
    print("engines: " + ", ".join(f"{s.label} = {s.engine}" for s in summaries) + f"; program {meta['program']['commit']} ({program_before})")
    print(format_table(summaries))
    print(near_miss_line(summaries[0]))
    print(f"\nTA = true accepts; targets apply to voice-skill ('met'); RTF = child CPU seconds / audio seconds.")
    print(f"{elapsed:.0f} s in all ({corpus_seconds:.0f} s corpus); summary: {path}")
    for s in summaries:
        for failure in s.failed_runs:
            print(f"warning: {s.label} failed on {failure}", file=sys.stderr)
    if program_after != program_before:
        print("warning: voice_skill/ or phrases/triggers.toml changed during the run; runs may mix versions", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
