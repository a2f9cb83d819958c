"""Pick wake engine v3's thresholds (the spotter's fit and the judge's scores) on the
development voices, never on evaluation voices.

    python3 -m training.tune_judged collect   # the v3 engine over the dev clips, the judge asked every time
    python3 -m training.tune_judged grid      # every rule in the grid: true and false accepts, and the pick
    python3 -m training.tune_judged check     # the rule in voice_skill/recognizers/fusion.py on the evidence
    python3 -m training.tune_judged commands-collect  # the same for commands, on training.tune_commands' clips
    python3 -m training.tune_judged commands-grid

The clips are training.tune_fusion's (the DEV voices of training.voices say each wake
phrase and 12 dev near misses in six conditions, 20 dev sentences each, and the dev bench's
45 minutes of ordinary speech). ``collect`` runs the real engine with the judge asked at every
utterance end, whatever the fit (so that the grid can choose when to ask it), and keeps each
decision's evidence in ``training/out/judged_evidence.pkl``; ``grid`` and ``check`` replay
the v3 rule (``fusion.decide_judged``) over it in seconds. Collect again after changing the
spotter, the verifier or the judge.

The pick: the most true accepts with no false accept on ordinary speech and at most
NEAR_BUDGET near-miss false accepts (of 432), ties to the noisy conditions, then to the
fewest judge calls on ordinary speech (the cost), then to the rule in force.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import pickle
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from training.tune_fusion import NOISY, Clip, dev_clips, long_ordinary
from training.voices import JUDGE_DEV, TRAINING_DIR

EVIDENCE = TRAINING_DIR / "out" / "judged_evidence.pkl"
NEAR_BUDGET = 10  # near-miss false accepts of 1008 the pick may have (1 %: the target for held-out near misses)

GRID = dict(
    judged_frame_score=[-3.0, -3.5, -99.0],
    judged_noisy_allowance=[0.5, 1.0],
    judged_whole_frame_score=[None],
    judge_with_fit=[-3.0, -2.5, -2.0, -1.75, -1.5],
    judge_noisy_allowance=[0.0, 0.5, 1.0, 2.0],
    judge_sure=[-1.0, -0.8, 9.0],
    judge_mid_sentence_penalty=[1.0, 99.0],
    judge_veto_margin=[None, 0.5, 1.0],
    judge_veto_confidence=[-1.0, -0.5],
    judge_veto_in_noise=[True, False],
)
# The gate (when the judge is asked at all) changes the cost, rarely the accuracy: `grid`
# picks the rule with the judge always asked, then `gate` shows what each gate costs it.
GATES = [None, -4.5, -5.0, -5.5, -6.0]


@dataclass(frozen=True)
class Record:
    """One decision's evidence, without the audio."""

    candidate: str | None
    after_speech: bool
    phonetic: object  # PhoneticEvidence | None
    judgement: object  # Judgement
    noisy: bool


def collect(out: Path = EVIDENCE, clips: bool = True, long_files: bool = True) -> None:
    """The v3 engine over the dev clips of JUDGE_DEV's voices (DEV and the TRAIN voices that
    are not espeak-ng) and the dev bench's ordinary speech, the judge asked every time."""
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir
    from voice_skill.recognizers.fusion import FusionRule
    from voice_skill.recognizers.judging import load_judge
    from voice_skill.recognizers.wake_engine import EngineOptions, JudgedDecision, WakeEngine

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    engine = WakeEngine(table, EngineOptions(rule=FusionRule(judge_gate=None), generated_confusions=False), judge=load_judge())
    records: list = []
    for clip, audio in itertools.chain(dev_clips(voices=JUDGE_DEV) if clips else (), long_ordinary() if long_files else ()):
        decisions: list = []
        engine.restart()
        engine.observer = decisions.append
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
        for i in range(0, len(pcm), 2048):
            engine.feed(pcm[i : i + 2048])
        engine.finish()
        # Plain tuples (see tune_fusion.collect: run as a script, Record is __main__.Record).
        kept = [
            (d.candidate.text if d.candidate else None, bool(d.candidate and d.candidate.after_speech), d.phonetic, d.judgement, d.noisy)
            for d in decisions
            if isinstance(d, JudgedDecision)
        ]
        records.append((tuple(asdict(clip).values()), kept))
        if len(records) % 100 == 0:
            print(f"{len(records)} clips", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(records))
    print(f"{len(records)} clips, {sum(len(d) for _, d in records)} decisions -> {out}")


def astuple_shallow(record: Record) -> tuple:
    return tuple(getattr(record, f.name) for f in fields(record))


class _Unpickler(pickle.Unpickler):
    """Evidence written when this module ran as __main__ names its classes there."""

    def __init__(self, path: Path):
        self._file = open(path, "rb")
        super().__init__(self._file)

    def find_class(self, module, name):
        if module == "__main__":
            module = __name__
        return super().find_class(module, name)

    def load(self):
        with self._file:
            return [(clip, [astuple_shallow(d) if isinstance(d, Record) else d for d in decisions]) for clip, decisions in super().load()]


def _load(path: Path, more: tuple[Path, ...] = ()):
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    intent_of = {p: intent for intent, phrases in table.intents.items() for p in phrases}
    records = [(Clip(*clip), [Record(*d) for d in decisions]) for p in (path, *more) for clip, decisions in _Unpickler(p).load()]
    totals = collections.Counter(clip.role for clip, _ in records)
    return records, intent_of, totals


def evaluate(rule, records, intent_of):
    """True accepts per condition, false accepts per role, and judge calls on ordinary speech."""
    from voice_skill.recognizers.fusion import decide_judged, judge_matters

    ta: collections.Counter = collections.Counter()
    fa: collections.Counter = collections.Counter()
    for clip, decisions in records:
        fired = []
        for d in decisions:
            asked = judge_matters(rule, d.phonetic, d.noisy)
            if clip.role == "ordinary":
                fa["judge calls"] += asked
            decision, phrase = decide_judged(rule, d.phonetic, d.judgement if asked else None, intent_of, d.noisy)
            if decision.accept:
                fired.append(intent_of[phrase])
        if clip.role == "trigger":
            ta[clip.condition] += clip.intent in fired
        elif clip.role == "ordinary":
            fa["ordinary"] += len(fired)
        elif fired:
            fa[clip.role] += 1
    return ta, fa


def grid(path: Path = EVIDENCE, budget: int = NEAR_BUDGET, more: tuple[Path, ...] = ()) -> None:
    from voice_skill.recognizers.fusion import FusionRule

    records, intent_of, totals = _load(path, more)
    keys = list(GRID)
    results = []
    for values in itertools.product(*GRID.values()):
        rule = FusionRule(judge_gate=None, **dict(zip(keys, values)))
        ta, fa = evaluate(rule, records, intent_of)
        results.append((sum(ta.values()), fa["near"], fa["ordinary"], fa["judge calls"], dict(zip(keys, values)), dict(ta)))
    front: list = []
    for r in sorted((r for r in results if r[2] == 0), key=lambda r: (r[1], -r[0])):
        if not front or r[0] > front[-1][0]:
            front.append(r)
    print(f"Pareto front (no false accept on {totals['ordinary']} ordinary clips and files): true accepts of {totals['trigger']}, near-miss false accepts of {totals['near']}")
    for hits, near, _, calls, rule, by_condition in front:
        print(f"{hits:4d}  near FA {near:3d}  judge calls {calls:4d}  {rule}  {by_condition}")
    within = [r for r in results if r[2] == 0 and r[1] <= budget]
    if within:
        current = asdict(FusionRule())
        unchanged = lambda r: sum(current[k] == v for k, v in r[4].items())  # noqa: E731
        hits, near, _, calls, rule, by_condition = max(within, key=lambda r: (r[0], sum(r[5].get(c, 0) for c in NOISY), -r[1], -r[3], unchanged(r)))
        print(f"pick (most true accepts, none on ordinary speech, at most {budget} near-miss false accepts; then noise): {hits} true accepts, near FA {near}: {rule} {by_condition}")
        print("the pick with the judge asked only where the phrase fits at the gate or better:")
        for gate in GATES:
            ta, fa = evaluate(FusionRule(judge_gate=gate, **rule), records, intent_of)
            print(f"  gate {gate}: {sum(ta.values())} true accepts, near FA {fa['near']}, ordinary FA {fa['ordinary']}, judge calls on ordinary speech {fa['judge calls']} {dict(ta)}")
    in_force, fa = evaluate(FusionRule(), records, intent_of)
    print(f"the rule in force: {sum(in_force.values())} true accepts, near FA {fa['near']}, ordinary FA {fa['ordinary']}, judge calls {fa['judge calls']}: {dict(in_force)}")


def check(path: Path = EVIDENCE, more: tuple[Path, ...] = ()) -> None:
    from voice_skill.recognizers.fusion import FusionRule

    records, intent_of, totals = _load(path, more)
    for signals in ("fused", "judge"):
        ta, fa = evaluate(replace(FusionRule(), signals=signals), records, intent_of)
        print(f"{signals:6s} true accepts {sum(ta.values())}/{totals['trigger']} {dict(ta)}; false accepts: near {fa['near']}/{totals['near']}, ordinary {fa['ordinary']}; judge calls on ordinary speech {fa['judge calls']}")


COMMAND_EVIDENCE = TRAINING_DIR / "out" / "judged_command_evidence.pkl"
COMMAND_GRID = dict(
    judged_command_score=[-2.0, -2.5, -3.0, -3.5],
    judged_one_word_command_score=[-3.0, -3.5, -4.0, -4.5, -5.0],
    command_judge_gate=[None, -5.0, -6.0, -7.0],
    command_judge_with_fit=[-99.0, -6.0, -5.0, -4.0, -3.0, -2.5, -2.0, -1.5, -1.0],
    command_judge_sure=[-1.0, -0.75, -0.5, -0.3, 9.0],
)


def commands_collect(out: Path = COMMAND_EVIDENCE) -> None:
    """The v3 engine over training.tune_commands' clips (every command said by the dev voices
    in four conditions; near misses, sentences with command words, ordinary speech), the
    judge asked about every command candidate."""
    from training.tune_commands import Clip as CommandClip
    from training.tune_commands import dev_clips as command_clips
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir
    from voice_skill.recognizers.fusion import FusionRule
    from voice_skill.recognizers.judging import load_judge
    from voice_skill.recognizers.wake_engine import EngineOptions, JudgedCommand, WakeEngine

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    rule = FusionRule(command_judge_gate=None, min_command_score=-99, min_one_word_command_score=-99, min_command_phones_per_second=0)
    engine = WakeEngine(table, EngineOptions(rule=rule, generated_confusions=False), judge=load_judge())
    records: list = []
    items = itertools.chain(command_clips(), ((CommandClip(*asdict(c).values()), a) for c, a in long_ordinary()))
    for clip, audio in items:
        decisions: list = []
        engine.restart()
        engine.observer = decisions.append
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
        for i in range(0, len(pcm), 2048):
            engine.feed(pcm[i : i + 2048])
        engine.finish()
        kept = [(d.phrase, d.phonetic, d.judgement.scores[d.phrase].score if d.judgement else None, d.judgement.transcript if d.judgement else "", d.noisy) for d in decisions if isinstance(d, JudgedCommand)]
        records.append((tuple(asdict(clip).values()), kept))
        if len(records) % 200 == 0:
            print(f"{len(records)} clips", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(records))
    print(f"{len(records)} clips, {sum(len(d) for _, d in records)} command candidates -> {out}")


def commands_evaluate(rule, records, intent_of):
    from voice_skill.recognizers.fusion import command_judge_matters, command_judged

    heard: collections.Counter = collections.Counter()
    false: collections.Counter = collections.Counter()
    for clip, evidence in records:
        fired = []
        for phrase, phonetic, judge, _, noisy in evidence:
            asked = command_judge_matters(rule, phonetic, noisy)
            ok, _ = command_judged(rule, phonetic, judge if asked else None, noisy)
            if ok:
                fired.append(intent_of[phrase])
        if clip[3] == "command":
            heard[clip[1]] += clip[4] in fired
            heard["stop " + clip[1]] += clip[2] == "stop" and "stop" in fired
            false["command"] += sum(i != clip[4] for i in fired)
        else:
            false[clip[3]] += len(fired)
    return heard, false


def commands_grid(path: Path = COMMAND_EVIDENCE) -> None:
    from voice_skill.recognizers.fusion import FusionRule

    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    intent_of = {p: intent for intent, phrases in table.intents.items() for p in phrases}
    records = pickle.loads(path.read_bytes())
    totals = collections.Counter(c[1] if c[3] == "command" else c[3] for c, _ in records)
    print("clips:", dict(totals))
    keys = list(COMMAND_GRID)
    results = []
    for values in itertools.product(*COMMAND_GRID.values()):
        rule = FusionRule(**dict(zip(keys, values)))
        heard, false = commands_evaluate(rule, records, intent_of)
        plain = sum(v for k, v in heard.items() if not k.startswith("stop "))
        results.append((plain, sum(false[r] for r in ("near", "words")), false["ordinary"], false["command"], dict(zip(keys, values)), dict(heard)))
    # The bar to beat: v2's command rule (its fit bars, no judge) on the same candidates.
    v2 = FusionRule(
        command_judge_gate=None, command_judge_with_fit=-99.0, command_judge_sure=99.0,
        judged_command_score=FusionRule().min_command_score, judged_one_word_command_score=FusionRule().min_one_word_command_score,
    )
    in_force = commands_evaluate(v2, records, intent_of)
    now = commands_evaluate(FusionRule(), records, intent_of)
    print("the rule in force:", sum(v for k, v in now[0].items() if not k.startswith("stop ")), dict(now[0]), dict(now[1]))
    print("v2's command rule:", sum(v for k, v in in_force[0].items() if not k.startswith("stop ")), dict(in_force[0]), dict(in_force[1]))
    front: list = []
    for r in sorted((r for r in results if r[2] == 0), key=lambda r: (r[1] + r[3], -r[0])):
        if not front or r[0] > front[-1][0]:
            front.append(r)
    print("Pareto front (no false command on ordinary speech): commands heard, false commands on near misses and sentences with command words, commands heard as others")
    for hits, false, _, other, rule, heard in front:
        print(f"{hits:4d}  false {false:3d}  as another {other:3d}  {rule}  {heard}")
    # The pick: no more false commands of any kind than v2's rule, at least its
    # commands and its "stop"s; then the most "stop"s (the command that matters most: it is what a couple says
    # over a long answer), the most commands, and the fewest judge calls (the highest gate).
    stops = lambda heard: sum(v for k, v in heard.items() if k.startswith("stop "))  # noqa: E731
    base_false = sum(in_force[1][r] for r in ("near", "words"))
    base_heard = sum(v for k, v in in_force[0].items() if not k.startswith("stop "))
    within = [r for r in results if r[2] == 0 and r[1] <= base_false and r[3] <= in_force[1]["command"] and stops(r[5]) >= stops(in_force[0]) and r[0] >= base_heard]
    gate = lambda rule: -99.0 if rule["command_judge_gate"] is None else rule["command_judge_gate"]  # noqa: E731
    hits, false, _, other, rule, heard = max(within, key=lambda r: (stops(r[5]), r[0], gate(r[4])))
    print(f"pick (no more false commands than v2's rule, at least its commands and stops; the most stops, then commands, then the fewest judge calls): {hits} heard, {stops(heard)} stops, false {false}, as another {other}: {rule} {heard}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("collect", "grid", "check", "commands-collect", "commands-grid"))
    parser.add_argument("--evidence", type=Path, default=EVIDENCE)
    parser.add_argument("--budget", type=int, default=NEAR_BUDGET, help="grid: the most near-miss false accepts the pick may have")
    parser.add_argument("--only", choices=("clips", "ordinary"), help="collect: only the short clips, or only the dev bench's 45 minutes of ordinary speech")
    parser.add_argument("--with", dest="merge", type=Path, action="append", default=[], help="grid, check: more evidence (another --only part) to weigh with --evidence")
    args = parser.parse_args(argv)
    if args.step == "grid":
        grid(args.evidence, args.budget, tuple(args.merge))
    elif args.step == "commands-collect":
        commands_collect(args.evidence if args.evidence != EVIDENCE else COMMAND_EVIDENCE)
    elif args.step == "commands-grid":
        commands_grid(args.evidence if args.evidence != EVIDENCE else COMMAND_EVIDENCE)
    elif args.step == "collect":
        collect(args.evidence, clips=args.only != "ordinary", long_files=args.only != "clips")
    else:
        check(args.evidence, tuple(args.merge))
    return 0


if __name__ == "__main__":
    sys.exit(main())
