"""Pick the wake engine's fusion thresholds on the development voices (never evaluation voices).

    python3 -m training.tune_fusion collect      # run the engine over the dev clips, keep its evidence
    python3 -m training.tune_fusion grid         # every rule in the grid: true and false accepts
    python3 -m training.tune_fusion check        # the rule in voice_skill/recognizers/fusion.py
    python3 -m training.tune_fusion baseline     # the old engine (bench.measure.OLD_ENGINE_COMMIT) on the same clips

The dev clips: the DEV voices of ``training.voices`` say each wake phrase and 12 sentences of
``bench/dev_near_misses.txt`` in six conditions (clean; right after a lead-in of
``bench/dev_leadins.txt`` with a 0.05-0.25 s gap; reverb; fan noise at 10 and 5 dB; run-on at
10 dB), and 20 sentences of ``bench/dev_sentences.txt`` each (some at 15 dB); and the dev
bench's ordinary-speech files (``bench/out/dev/corpus/ordinary-*.wav``, about 45 minutes of the
dev voices reading dev sentences, built by ``python3 -m bench.run --voice-set dev``), where the
rare false accepts show. Nothing here is an evaluation voice or an evaluation text
(tests/test_training.py checks the text lists).

``collect`` runs the real engine with every threshold open (so every candidate reaches the
fusion rule) and stores each decision's evidence (phonetic fit, margin, neural scores) in
``training/out/fusion_evidence.pkl``; ``grid`` and ``check`` replay the fusion rule over it,
which takes seconds. The engine's structure (spotter, verifier, neural window) must be the
same as at collection time: collect again after changing any of them.

``baseline`` runs the old engine (``bench.measure.OLD_ENGINE_COMMIT``, the engine the issue
says no measure may get worse than) over the same clips and files. ``grid`` prints the
Pareto front (true accepts up, near-miss false accepts down) among rules with no more false
accepts on ordinary speech than the old engine, and the pick: the most true accepts with no
more false accepts than the old engine has on the same clips (near misses and ordinary
speech; NEAR_BUDGET and none before ``baseline`` has run), ties to the noisy conditions.
Costs: ``collect`` about 20 CPU minutes (more the first time: synthesis), ``baseline`` about
10, ``grid`` about two minutes.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import pickle
import random
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from training.voices import DEV, TRAINING_DIR, synthesize

REPO = TRAINING_DIR.parent
RATE = 16000
EVIDENCE = TRAINING_DIR / "out" / "fusion_evidence.pkl"
BASELINE = TRAINING_DIR / "out" / "old_engine_dev.json"
DEV_CORPUS = REPO / "bench" / "out" / "dev" / "corpus"
CONDITIONS = ("clean", "runon", "reverb", "fan10", "fan5", "runon10")
SNR = {"fan10": 10, "fan5": 5, "runon10": 10}
NEAR_PER_CONDITION = 12
ORDINARY_PER_VOICE = 20
LEVEL_DBFS = -23.0

GRID = dict(
    min_frame_score=[-2.5, -3.0, -3.5, -4.0],
    noisy_allowance=[0.0, 0.4, 0.8],
    min_margin=[-0.35, -0.25, -0.15, -0.05],
    noisy_margin_allowance=[0.0, 0.15],
    neural_sure=[0.8, 0.9, 1.01],
    neural_veto=[0.0, 0.1, 0.2, 0.3],
    floor_frame_score=[-4.5, -5.0],
    # Rule 1's exception: a neural score so high that a fit below the floor still counts.
    neural_certain=[1.01, 0.9, 0.95],
    deep_floor_frame_score=[-6.0, -7.0],
    alone_rivals=["all", "decoys"],
    # Rule 0 (the whole utterance, as the engine before v2 tested it): off, or at its bar.
    whole_frame_score=[None, -3.0, -3.5],
    whole_noisy_allowance=[0.0, 0.8],
)
# The pick: the most true accepts with no false accept on ordinary speech and at most this
# many near-miss false accepts (of 432: what the rules before had); ties go to the noisy
# conditions, then to the rule in force.
NEAR_BUDGET = 20
NOISY = ("fan10", "fan5", "runon10")


@dataclass(frozen=True)
class Clip:
    voice: str
    condition: str
    text: str
    role: str  # trigger | near | ordinary
    intent: str | None


def _lines(name: str) -> list[str]:
    return [line.strip() for line in (REPO / "bench" / name).read_text().splitlines() if line.strip() and not line.startswith("#")]


def _fan(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    shape = 1 / np.sqrt(np.maximum(f, 20.0)) / np.sqrt(1 + (f / 4000.0) ** 4)
    x = np.fft.irfft(spectrum * shape, n)
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def _level(a: np.ndarray) -> np.ndarray:
    active = a[np.abs(a) > 1e-3]
    r = np.sqrt(np.mean(active**2)) if len(active) else 0.0
    return (a * (10 ** (LEVEL_DBFS / 20) / r)).astype(np.float32) if r > 0 else a


def _reverb(a: np.ndarray) -> np.ndarray:
    import soundfile

    with tempfile.TemporaryDirectory() as d:
        soundfile.write(f"{d}/i.wav", np.concatenate([a, np.zeros(12800, np.float32)]), RATE, subtype="FLOAT")
        subprocess.run(["sox", f"{d}/i.wav", f"{d}/o.wav", "reverb", "50", "50", "30", "100", "5"], check=True, capture_output=True)
        return soundfile.read(f"{d}/o.wav", dtype="float32")[0]


def _clip(parts: list[tuple[np.ndarray, float]], snr: float | None, seed: int) -> np.ndarray:
    silence = lambda s: np.zeros(int(s * RATE), np.float32)  # noqa: E731
    pieces = [silence(0.5)]
    for audio, gap in parts:
        pieces += [audio, silence(gap)]
    pieces.append(silence(1.0))
    y = np.concatenate(pieces)
    floor = 10 ** (-70 / 20) if snr is None else 10 ** ((LEVEL_DBFS - snr) / 20)
    return (y + _fan(len(y), seed) * floor).astype(np.float32)


def speaker(voice):
    """say(text, rate): a dev voice's speech at the bench's level."""
    return lambda text, rate=1.0: _level(synthesize(text, voice, rate=rate))


def spoken(say, text: str, condition: str, rng: random.Random) -> np.ndarray:
    """A phrase said at a rate jittered 0.9-1.1, reverberated in the reverb condition."""
    x = say(text, rng.uniform(0.9, 1.1))
    return _reverb(x) if condition == "reverb" else x


def ordinary_clips(clip_type, voice, say, ordinary: list[str], rng: random.Random):
    """(clip, audio) for ORDINARY_PER_VOICE dev sentences of one voice, some at 15 dB."""
    for sentence in rng.sample(ordinary, ORDINARY_PER_VOICE):
        yield clip_type(voice.key, "ordinary", sentence, "ordinary", None), _clip([(say(sentence), 0.0)], rng.choice([None, None, 15]), rng.randrange(1 << 30))


def dev_clips(seed: int = 1, conditions=CONDITIONS, voices=DEV):
    """(Clip, audio) for every dev clip, reproducibly (the DEV voices unless told otherwise)."""
    from voice_skill.intents import WAKE_INTENTS, load_triggers
    from voice_skill.phrases import bundled_phrases_dir

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    triggers = {p: intent for intent in WAKE_INTENTS for p in table.intents.get(intent, ())}
    near, leadins, ordinary = _lines("dev_near_misses.txt"), _lines("dev_leadins.txt"), _lines("dev_sentences.txt")
    rng = random.Random(seed)
    for voice in voices:
        say = speaker(voice)
        for condition in conditions:
            for text in list(triggers) + rng.sample(near, NEAR_PER_CONDITION):
                parts = [(spoken(say, text, condition, rng), 0.0)]
                if condition.startswith("runon"):
                    parts.insert(0, (say(rng.choice(leadins)), rng.uniform(0.05, 0.25)))
                role = "trigger" if text in triggers else "near"
                yield Clip(voice.key, condition, text, role, triggers.get(text)), _clip(parts, SNR.get(condition), rng.randrange(1 << 30))
        yield from ordinary_clips(Clip, voice, say, ordinary, rng)


def long_ordinary():
    """(Clip, audio) for the dev bench's ordinary-speech files (about 45 minutes of the dev
    voices reading dev sentences, some over noise): false accepts are rare events, and the
    short clips above are too few to see them. The bench builds these files
    (`python3 -m bench.run --voice-set dev`); without them, a note says so."""
    import soundfile

    files = sorted(DEV_CORPUS.glob("ordinary-*.wav"))
    if not files:
        print(f"note: no dev ordinary-speech files in {DEV_CORPUS}; build them with 'python3 -m bench.run --voice-set dev' (the corpus step)", file=sys.stderr)
    for path in files:
        audio, rate = soundfile.read(str(path), dtype="float32")
        assert rate == RATE, path
        yield Clip(path.stem, "ordinary", path.name, "ordinary", None), audio


def collect(out: Path = EVIDENCE) -> None:
    from voice_skill.recognizers.choose import build_wake_engine
    from voice_skill.recognizers.fusion import FusionRule
    from voice_skill.recognizers.wake_engine import EngineOptions, WakeDecision
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    # The command bars as they were when this was collected (a rate bar of 0, no noisy
    # allowance, one bar for every command).
    wide_open = FusionRule(
        min_frame_score=-99, floor_frame_score=-99, min_worst_word=-99, min_phones_per_second=0, neural_veto=-1, min_margin=-99,
        min_command_phones_per_second=0, command_noisy_allowance=0.0, min_one_word_command_score=-2.5,
    )
    records: list[tuple[Clip, list]] = []
    engine = build_wake_engine("fused", table, report=lambda line: None, options=EngineOptions(rule=wide_open))
    for clip, audio in itertools.chain(dev_clips(), long_ordinary()):
        decisions: list = []
        engine.restart()
        engine.observer = decisions.append
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
        for i in range(0, len(pcm), 2048):
            engine.feed(pcm[i : i + 2048])
        engine.finish()
        # The clip as a plain tuple: run as a script, Clip is __main__.Clip, which a pickle
        # could not find again from anywhere else.
        # Wake decisions only: the observer sees command decisions too (training/tune_commands.py).
        records.append((tuple(asdict(clip).values()), [(d.text, d.phonetic, d.neural, d.noisy) for d in decisions if isinstance(d, WakeDecision)]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(records))
    print(f"{len(records)} clips, {sum(len(d) for _, d in records)} decisions -> {out}")


_OLD_ENGINE_RUNNER = r"""
import json, pickle, sys
from voice_skill.intents import load_triggers
from voice_skill.phrases import bundled_phrases_dir
from voice_skill.recognizers.pocketsphinx_recognizer import PocketsphinxRecognizer

table = load_triggers(bundled_phrases_dir() / "triggers.toml")
intent_of = {p: i for i, phrases in table.intents.items() for p in phrases}
out = []
for clip, pcm in pickle.load(open(sys.argv[1], "rb")):
    engine = PocketsphinxRecognizer(table.phrases(), list(table.decoys))
    heard = []
    for i in range(0, len(pcm), 2048):
        heard += engine.feed(pcm[i : i + 2048])
    heard += engine.finish()
    out.append([clip, [intent_of[h.text] for h in heard if h.text in intent_of]])
json.dump(out, open(sys.argv[2], "w"))
"""


def baseline(out: Path = BASELINE) -> None:
    """The old engine (the one the issue says nothing may get worse than) on the same dev
    clips and ordinary speech: its true and false accepts are the bar the pick must meet."""
    import json

    from bench.measure import OLD_ENGINE_COMMIT, ensure_old_engine
    from bench.run import OLD_ENGINE_DIR

    worktree = ensure_old_engine(OLD_ENGINE_DIR)
    items = [(tuple(asdict(clip).values()), (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()) for clip, audio in itertools.chain(dev_clips(), long_ordinary())]
    with tempfile.TemporaryDirectory() as tmp:
        clips, heard = Path(tmp) / "clips.pkl", Path(tmp) / "heard.json"
        clips.write_bytes(pickle.dumps(items))
        env = {**__import__("os").environ, "PYTHONPATH": str(worktree)}
        subprocess.run([sys.executable, "-c", _OLD_ENGINE_RUNNER, str(clips), str(heard)], cwd=worktree, env=env, check=True)
        results = json.loads(heard.read_text())
    ta: collections.Counter = collections.Counter()
    fa: collections.Counter = collections.Counter()
    for clip, fired in results:
        clip = Clip(*clip)
        if clip.role == "trigger":
            ta[clip.condition] += clip.intent in fired
        elif clip.role == "ordinary":
            fa["ordinary"] += len(fired)
        elif fired:
            fa[clip.role] += 1
    summary = {"commit": OLD_ENGINE_COMMIT, "true_accepts": dict(ta), "false_accepts": dict(fa)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    print(f"old engine {OLD_ENGINE_COMMIT} on dev: true accepts {sum(ta.values())} {dict(ta)}; false accepts {dict(fa)} -> {out}")


def evaluate(rule, records, intent_of) -> tuple[collections.Counter, collections.Counter]:
    """True accepts per condition, false accepts per role (near, ordinary)."""
    from voice_skill.recognizers.fusion import accepted_phrase, decide

    ta: collections.Counter = collections.Counter()
    fa: collections.Counter = collections.Counter()
    for clip, decisions in records:
        fired = []
        for text, phonetic, neural, noisy in decisions:
            decision = decide(rule, phonetic, (neural or {}).get(intent_of[text]), noisy)
            if decision.accept:
                fired.append(intent_of[accepted_phrase(decision, phonetic)])
        if clip.role == "trigger":
            ta[clip.condition] += clip.intent in fired
        elif clip.role == "ordinary":
            fa[clip.role] += len(fired)  # a long file may fire more than once
        elif fired:
            fa[clip.role] += 1
    return ta, fa


def _load(path: Path):
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    intent_of = {p: intent for intent, phrases in table.intents.items() for p in phrases}
    records = [(Clip(*clip), decisions) for clip, decisions in pickle.loads(path.read_bytes())]
    totals = collections.Counter(clip.role for clip, _ in records)
    return records, intent_of, totals


def _baseline_budget(path: Path = BASELINE) -> tuple[int, int, str] | None:
    """(near-miss, ordinary) false accepts of the old engine on the dev clips, and a line
    saying so; None until `baseline` has run."""
    import json

    if not path.exists():
        return None
    old = json.loads(path.read_text())
    fa, ta = old["false_accepts"], old["true_accepts"]
    line = f"the old engine {old['commit']}: {sum(ta.values())} true accepts {ta}, near FA {fa.get('near', 0)}, ordinary FA {fa.get('ordinary', 0)}"
    return fa.get("near", 0), fa.get("ordinary", 0), line


def grid(path: Path = EVIDENCE, budget: int | None = None, baseline_path: Path = BASELINE) -> None:
    from voice_skill.recognizers.fusion import FusionRule

    records, intent_of, totals = _load(path)
    # The budget: what the old engine lets through on the same clips (the issue: no measure
    # may get worse than the old engine's), or NEAR_BUDGET before `baseline` has run.
    ordinary_budget = 0
    old = _baseline_budget(baseline_path)
    if old is not None:
        print(old[2])
    if budget is None:
        budget, ordinary_budget = (old[0], old[1]) if old is not None else (NEAR_BUDGET, 0)
    keys = list(GRID)
    results = []
    for values in itertools.product(*GRID.values()):
        ta, fa = evaluate(FusionRule(**dict(zip(keys, values))), records, intent_of)
        results.append((sum(ta.values()), fa["near"], fa["ordinary"], dict(zip(keys, values)), dict(ta)))
    front: list = []
    for r in sorted((r for r in results if r[2] <= ordinary_budget), key=lambda r: (r[1], -r[0])):
        if not front or r[0] > front[-1][0]:
            front.append(r)
    print(f"Pareto front (at most {ordinary_budget} false accepts on {totals['ordinary']} ordinary clips and files): true accepts of {totals['trigger']}, near-miss false accepts of {totals['near']}")
    for hits, near, _, rule, by_condition in front:
        print(f"{hits:4d}  near FA {near:3d}  {rule}  {by_condition}")
    within = [r for r in results if r[2] <= ordinary_budget and r[1] <= budget]
    if within:
        # Ties (dev cannot tell the rules apart) keep as much of the rule in force as they can.
        current = asdict(FusionRule())
        unchanged = lambda r: sum(current[k] == v for k, v in r[3].items())  # noqa: E731
        hits, near, _, rule, by_condition = max(within, key=lambda r: (r[0], sum(r[4].get(c, 0) for c in NOISY), -r[1], -r[2], unchanged(r)))
        in_force, fa = evaluate(FusionRule(), records, intent_of)
        print(f"pick (most true accepts with at most {ordinary_budget} false accepts on ordinary speech and at most {budget} near-miss false accepts, then the most in noise): {hits} true accepts, near FA {near}: {rule} {by_condition}")
        print(f"the rule in force: {sum(in_force.values())} true accepts, near FA {fa['near']}, ordinary FA {fa['ordinary']}: {dict(in_force)}")


def check(path: Path = EVIDENCE) -> None:
    from voice_skill.recognizers.fusion import FusionRule

    records, intent_of, totals = _load(path)
    for signals in ("fused", "phonetic"):  # the neural signal alone decides per utterance: see bench/neural_eval.py
        rule = FusionRule(signals=signals)
        ta, fa = evaluate(rule, records, intent_of)
        print(f"{signals:8s} true accepts {sum(ta.values())}/{totals['trigger']} {dict(ta)}; false accepts: near {fa['near']}/{totals['near']}, ordinary {fa['ordinary']}/{totals['ordinary']}")
    print("rule:", asdict(FusionRule()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("collect", "grid", "check", "baseline"))
    parser.add_argument("--evidence", type=Path, default=EVIDENCE)
    parser.add_argument("--baseline", type=Path, default=BASELINE, help="the old engine's counts on the dev clips (written by 'baseline', read by 'grid')")
    parser.add_argument("--budget", type=int, default=None, help="grid: the most near-miss false accepts the pick may have (default: the old engine's, from 'baseline', else %d)" % NEAR_BUDGET)
    args = parser.parse_args(argv)
    if args.step == "grid":
        grid(args.evidence, args.budget, args.baseline)
    elif args.step == "baseline":
        baseline(args.baseline)
    else:
        {"collect": collect, "check": check}[args.step](args.evidence)
    return 0


if __name__ == "__main__":
    sys.exit(main())
