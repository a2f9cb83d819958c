"""Pick the wake engine's command thresholds on the development voices (never evaluation voices).

    python3 -m training.tune_commands collect    # run the engine over the dev clips, keep the command evidence
    python3 -m training.tune_commands grid       # every command rule in the grid: commands heard, false commands
    python3 -m training.tune_commands check      # the rule in voice_skill/recognizers/fusion.py, and the evidence

A command ("stop", "another one", "speak softer": every intent of phrases/triggers.toml that
is not a wake intent) is heard when the spotter finds it as the whole utterance, the
utterance is no longer than the command said slowly, and the verifier's fit and speaking
rate clear FusionRule's command bars (``fusion.command_fits``). ``training/tune_fusion.py``
picks the wake-phrase thresholds; this picks the command ones, on the same kind of clips.

The dev clips: the DEV voices of ``training.voices`` say every command phrase in four
conditions (clean, reverb, fan noise at 10 and 5 dB; rate jittered 0.9-1.1): these should be
heard. These should not: 12 sentences of ``bench/dev_near_misses.txt`` per voice and condition
(role near); 20 sentences of ``bench/dev_sentences.txt`` per voice (some at 15 dB) and the dev
bench's ordinary-speech files (``tune_fusion.long_ordinary``, about 45 minutes; role
ordinary); and every sentence of ``bench/dev_sentences.txt`` and
``bench/dev_command_sentences.txt`` with a command's word in it ("stop by the shop", "stop
it"), clean and at 10 dB (role words). Nothing here is an evaluation voice or an evaluation
text (tests/test_training.py checks the text lists).

``collect`` runs the real engine with the command bars fully open (and the wake thresholds
open, as ``tune_fusion collect`` does) and stores, for every command candidate that reaches
the verifier, its evidence (phrase, fit, speaking rate, worst word, noisy) in
``training/out/command_evidence.pkl``; ``grid`` and ``check`` replay the command rule over
it in seconds. Collect again after changing the spotter, the verifier or the front end.

The pick: the most commands heard with no false command on ordinary speech (short clips
and long files) and no more false commands on near misses, on the sentences with command
words or between commands than the rule in force; ties to the rule in force, then to one
rate bar for every command. ``grid`` then prints the one-word command's own fit bar
(``FusionRule.min_one_word_command_score``: "stop" has no other word to carry its fit) at
each value, under that pick: what it hears of the one-word commands and what it lets
through. That bar is a judgment on those lines (docs/wake-engine.md, "Commands").
"""

from __future__ import annotations

import argparse
import collections
import itertools
import pickle
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from training.tune_fusion import SNR, _clip, _lines, long_ordinary, ordinary_clips, speaker, spoken
from training.voices import DEV, TRAINING_DIR

EVIDENCE = TRAINING_DIR / "out" / "command_evidence.pkl"
CONDITIONS = ("clean", "reverb", "fan10", "fan5")
WORDS_CONDITIONS = ("clean", "fan10")
NEAR_PER_CONDITION = 12
NEGATIVE_ROLES = ("near", "words", "ordinary")

GRID = dict(
    min_command_score=[-2.0, -2.5, -2.75, -3.0, -3.25, -3.5, -4.0],
    min_command_phones_per_second=[5.5, 5.0, 4.5, 4.0, 3.5, 3.0],
    command_noisy_allowance=[0.0, 0.4, 0.8],
)
# The fit bar of a one-word command ("stop"), swept under the pick; None: the same bar as the others.
ONE_WORD_BARS = [None, -3.0, -3.5, -4.0, -4.5, -5.0]


@dataclass(frozen=True)
class Clip:
    voice: str
    condition: str
    text: str
    role: str  # command | near | words | ordinary
    intent: str | None


def _commands(table) -> dict[str, str]:
    from voice_skill.intents import WAKE_INTENTS

    return {p: intent for intent, phrases in table.intents.items() if intent not in WAKE_INTENTS for p in phrases}


def command_words(commands) -> set[str]:
    """The words of the commands that everyday speech uses too (not "a", "one", "that")."""
    common = {"a", "one", "that", "that's", "i", "bit", "please", "this", "not", "say", "go", "something", "good", "speak", "like", "keep", "save"}
    return {w for p in commands for w in p.split()} - common


def dev_clips(seed: int = 1):
    """(Clip, audio) for every dev clip, reproducibly."""
    from voice_skill.intents import load_triggers, normalize
    from voice_skill.phrases import bundled_phrases_dir

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    commands = _commands(table)
    near, ordinary = _lines("dev_near_misses.txt"), _lines("dev_sentences.txt")
    words = command_words(commands)
    with_words = [s for s in ordinary + _lines("dev_command_sentences.txt") if words & set(normalize(s).split())]
    rng = random.Random(seed)
    for voice in DEV:
        say = speaker(voice)
        for condition in CONDITIONS:
            for text in list(commands) + rng.sample(near, NEAR_PER_CONDITION):
                x = spoken(say, text, condition, rng)
                role = "command" if text in commands else "near"
                yield Clip(voice.key, condition, text, role, commands.get(text)), _clip([(x, 0.0)], SNR.get(condition), rng.randrange(1 << 30))
        for condition in WORDS_CONDITIONS:
            for sentence in with_words:
                yield Clip(voice.key, condition, sentence, "words", None), _clip([(say(sentence, rng.uniform(0.9, 1.1)), 0.0)], SNR.get(condition), rng.randrange(1 << 30))
        yield from ordinary_clips(Clip, voice, say, ordinary, rng)


def _run(items, out: Path) -> None:
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir
    from voice_skill.recognizers.choose import build_wake_engine
    from voice_skill.recognizers.fusion import FusionRule
    from voice_skill.recognizers.sphinx import model_paths, read_pronunciations
    from voice_skill.recognizers.wake_engine import CommandDecision, EngineOptions, phone_counts

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    commands = _commands(table)
    phones = phone_counts(commands, read_pronunciations(model_paths()[1], {w for p in commands for w in p.split()}))
    wide_open = FusionRule(
        min_frame_score=-99, floor_frame_score=-99, min_worst_word=-99, min_phones_per_second=0, neural_veto=-1, min_margin=-99,
        min_command_score=-99, min_command_phones_per_second=0, command_noisy_allowance=0.0, min_one_word_command_score=-99,
    )
    engine = build_wake_engine("fused", table, report=lambda line: None, options=EngineOptions(rule=wide_open))
    records: list[tuple[tuple, list]] = []
    started = time.monotonic()
    for n, (clip, audio) in enumerate(items, 1):
        decisions: list = []
        engine.restart()
        engine.observer = decisions.append
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
        for i in range(0, len(pcm), 2048):
            engine.feed(pcm[i : i + 2048])
        engine.finish()
        evidence = []
        for d in decisions:
            if isinstance(d, CommandDecision):
                p = d.phonetic
                evidence.append((d.text, None, None, None, d.noisy, phones[d.text]) if p is None else (p.text, p.frame_score, p.phones_per_second, p.worst_word, d.noisy, phones[p.text]))
        # The clip as a plain tuple (see tune_fusion.collect).
        records.append((tuple(asdict(clip).values()), evidence))
        if n % 200 == 0:
            print(f"{n} clips, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(records))
    print(f"{len(records)} clips, {sum(len(d) for _, d in records)} command candidates in {time.monotonic() - started:.0f} s -> {out}")


def collect(out: Path = EVIDENCE) -> None:
    _run(itertools.chain(dev_clips(), ((Clip(*asdict(c).values()), a) for c, a in long_ordinary())), out)


@dataclass(frozen=True)
class CommandRule:
    """The command bars the grid spans (the engine's are FusionRule's: see `in_force`)."""

    min_command_score: float
    min_command_phones_per_second: float
    command_noisy_allowance: float
    one_word_command_score: float | None = None  # None: the same bar as the others

    def heard(self, text: str, frame_score, rate, noisy: bool) -> bool:
        if frame_score is None:
            return False
        one_word = self.one_word_command_score is not None and len(text.split()) == 1
        bar = (self.one_word_command_score if one_word else self.min_command_score) - (self.command_noisy_allowance if noisy else 0.0)
        return frame_score >= bar and rate >= self.min_command_phones_per_second


def in_force() -> CommandRule:
    """The engine's command rule (fusion.command_fits) as a grid point (`_check_in_force`
    checks that the two agree)."""
    from voice_skill.recognizers.fusion import FusionRule

    rule = FusionRule()
    return CommandRule(rule.min_command_score, rule.min_command_phones_per_second, rule.command_noisy_allowance, rule.min_one_word_command_score)


def _check_in_force(records) -> None:
    """The grid's reading of the rule in force agrees with fusion.command_fits on every candidate."""
    from voice_skill.recognizers.fusion import FusionRule, command_fits
    from voice_skill.recognizers.verification import PhoneticEvidence

    rule, mine = FusionRule(), in_force()
    for _, evidence in records:
        for text, score, rate, worst, noisy, phones in evidence:
            if score is not None:
                assert command_fits(rule, PhoneticEvidence(text, score, worst, rate), noisy) == mine.heard(text, score, rate, noisy), (text, score, rate, noisy)


def evaluate(rule: CommandRule, records, intent_of) -> tuple[collections.Counter, collections.Counter]:
    """Commands heard per condition (the clip's own command), false commands per role (a
    command heard where none was said, or another command than the one said)."""
    heard: collections.Counter = collections.Counter()
    false: collections.Counter = collections.Counter()
    for clip, evidence in records:
        fired = [intent_of[text] for text, score, rate, _, noisy, _ in evidence if rule.heard(text, score, rate, noisy)]
        if clip.role == "command":
            heard[clip.condition] += clip.intent in fired
            false["command"] += sum(i != clip.intent for i in fired)
        else:
            false[clip.role] += len(fired)  # a long file may hear more than one
    return heard, false


def _load(path: Path):
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    intent_of = {p: intent for intent, phrases in table.intents.items() for p in phrases}
    records = [(Clip(*clip), evidence) for clip, evidence in pickle.loads(path.read_bytes())]
    return records, intent_of


def _totals(records) -> str:
    per = collections.Counter((clip.role, clip.condition) for clip, _ in records)
    return ", ".join(f"{role} {condition} {n}" for (role, condition), n in sorted(per.items()))


def _percentiles(values) -> str:
    if not values:
        return "none"
    q = np.percentile(values, [0, 10, 25, 50, 75, 90, 100])
    return "min {:.2f}, p10 {:.2f}, p25 {:.2f}, median {:.2f}, p75 {:.2f}, p90 {:.2f}, max {:.2f}".format(*q)


def _line(name: str, rule: CommandRule, records, intent_of) -> str:
    heard, false = evaluate(rule, records, intent_of)
    totals = collections.Counter(clip.condition for clip, _ in records if clip.role == "command")
    per = ", ".join(f"{c} {heard[c]}/{totals[c]}" for c in CONDITIONS)
    wrong = ", ".join(f"{r} {false[r]}" for r in NEGATIVE_ROLES + ("command",))
    return f"{name}: heard {sum(heard.values())}/{sum(totals.values())} ({per}); false commands: {wrong}; {asdict(rule)}"


def grid(path: Path = EVIDENCE) -> None:
    records, intent_of = _load(path)
    _check_in_force(records)
    print("clips:", _totals(records))
    print(_line("the rule in force", in_force(), records, intent_of))
    current = replace(in_force(), one_word_command_score=None)  # the grid's budget: one bar for every command
    _, current_false = evaluate(current, records, intent_of)
    results = []
    for values in itertools.product(*GRID.values()):
        rule = CommandRule(*values)
        heard, false = evaluate(rule, records, intent_of)
        results.append((sum(heard.values()), rule, heard, false))
    # The front: for each count of false commands on near misses and sentences with command
    # words (none on ordinary speech), the most commands heard.
    front: dict = {}
    for hits, rule, heard, false in results:
        if false["ordinary"]:
            continue
        key = false["near"] + false["words"]
        if key not in front or hits > front[key][0]:
            front[key] = (hits, rule)
    print("the most commands heard with no false command on ordinary speech, per false commands on near misses and sentences with command words:")
    for key in sorted(front):
        print(f"  {key:3d} false: " + _line("", front[key][1], records, intent_of).lstrip(": "))
    within = [r for r in results if r[3]["ordinary"] == 0 and r[3]["near"] <= current_false["near"] and r[3]["words"] <= current_false["words"] and r[3]["command"] <= current_false["command"]]
    current_fields = asdict(current)
    unchanged = lambda rule: sum(current_fields[k] == v for k, v in asdict(rule).items())  # noqa: E731
    # Ties: the rule in force, then the fewest false commands, then the highest bars.
    key = lambda r: (r[0], unchanged(r[1]), -sum(r[3].values()), r[1].min_command_score, r[1].min_command_phones_per_second)  # noqa: E731
    hits, rule, heard, false = max(within, key=key)
    print("pick (the most commands heard with no false command on ordinary speech and no more on near misses, sentences with command words or other commands than the rule in force with one bar for all; ties to the rule in force):")
    print(_line("pick", rule, records, intent_of))
    said = collections.Counter(clip.condition for clip, _ in records if clip.role == "command" and len(clip.text.split()) == 1)
    print(f"the one-word commands' own fit bar under the pick ({sum(said.values())} one-word command clips):")
    for bar in ONE_WORD_BARS:
        one_word = replace(rule, one_word_command_score=bar)
        heard, false = evaluate(one_word, records, intent_of)
        alone = collections.Counter(clip.condition for clip, evidence in records if clip.role == "command" and len(clip.text.split()) == 1 and clip.intent in [intent_of[t] for t, sc, r, _, n, _ in evidence if one_word.heard(t, sc, r, n)])
        wrong = ", ".join(f"{r} {false[r]}" for r in NEGATIVE_ROLES + ("command",))
        print(f"  {'same' if bar is None else bar:>5}: one-word heard {sum(alone.values())}/{sum(said.values())} ({', '.join(f'{c} {alone[c]}' for c in CONDITIONS)}); all heard {sum(heard.values())}; false commands: {wrong}")


def check(path: Path = EVIDENCE) -> None:
    """The rule in force on the dev evidence, and the evidence per command and role."""
    records, intent_of = _load(path)
    _check_in_force(records)
    print("clips:", _totals(records))
    print(_line("the rule in force", in_force(), records, intent_of))
    said: dict = collections.defaultdict(list)
    for clip, evidence in records:
        for text, score, rate, worst, noisy, phones in evidence:
            if score is None:
                continue
            if clip.role == "command" and text == clip.text:
                said[(text, phones)].append((score, rate, clip.condition))
            elif clip.role != "command":
                said[("(not said) " + clip.role, 0)].append((score, rate, clip.condition))
    for (text, phones), values in sorted(said.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        scores, rates = [v[0] for v in values], [v[1] for v in values]
        print(f"{text!r} ({phones} phones), {len(values)} candidates:\n    fit   {_percentiles(scores)}\n    rate  {_percentiles(rates)}")
    stop = next((values for (text, _), values in said.items() if text == "stop"), [])
    for condition in CONDITIONS:
        values = [v for v in stop if v[2] == condition]
        print(f"'stop' {condition}: " + "; ".join(f"{s:.2f} at {r:.1f}" for s, r, _ in sorted(values, reverse=True)))
    missing = collections.Counter(clip.condition for clip, evidence in records if clip.role == "command" and not any(t == clip.text and s is not None for t, s, *_ in evidence))
    print("command clips with no candidate of their own command (the spotter or the length check missed it, or a wake phrase fits better):", dict(missing))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=("collect", "grid", "check"))
    parser.add_argument("--evidence", type=Path, default=EVIDENCE)
    args = parser.parse_args(argv)
    {"collect": collect, "grid": grid, "check": check}[args.step](args.evidence)
    return 0


if __name__ == "__main__":
    sys.exit(main())
