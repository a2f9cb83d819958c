"""The training of the neural wake signal: its voices and text stay apart from evaluation
material, and a tiny run of the real script produces a model the run-time scorer loads."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from bench.corpus import NEAR_MISSES, ORDINARY_SENTENCES
from training import voices as V
from training.confusions import hard_negatives
from training.data import read_sentences
from voice_skill.intents import load_triggers, normalize

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"


def _lines(path: Path) -> list[str]:
    return [normalize(line) for line in path.read_text("utf-8").splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _training_texts() -> list[str]:
    table = load_triggers(REPO / "phrases" / "triggers.toml")
    generated = [p for phrases in hard_negatives(table).values() for p in phrases]
    return [normalize(s) for s in read_sentences()] + generated


def _evaluation_texts() -> dict[str, list[str]]:
    texts = {"bench near misses": [normalize(s) for s in NEAR_MISSES], "bench ordinary sentences": _lines(ORDINARY_SENTENCES)}
    for name in ("heldout_near_misses.txt", "runon_leadins.txt"):
        if (BENCH / name).exists():
            texts[f"bench/{name}"] = _lines(BENCH / name)
    return texts


def test_training_text_is_disjoint_from_evaluation_text():
    training = _training_texts()
    assert len(training) > 800
    padded = [f" {t} " for t in training]
    for source, texts in _evaluation_texts().items():
        assert texts, source
        clashes = sorted({t for t in texts for p in padded if f" {t} " in p})
        assert not clashes, f"training text contains {source}: {clashes[:10]}"


def test_training_sentences_contain_no_wake_phrase():
    table = load_triggers(REPO / "phrases" / "triggers.toml")
    wake = [p for intent in ("question", "tip") for p in table.intents[intent]]
    for text in _training_texts():
        assert not any(re.search(rf"\b{re.escape(p)}\b", text) for p in wake), text


def test_voice_split_keeps_evaluation_voices_out():
    keys = {v.key for v in V.TRAIN + V.DEV}
    assert not keys & V.EVALUATION_ONLY
    assert not any(v.id == "slt" or v.engine in ("flite", "piper") for v in V.TRAIN + V.DEV)
    assert not set(V.TRAIN) & set(V.DEV)
    assert {v.family for v in V.DEV} == {"espeak-ng", "mbrola", "pico", "rhvoice"}
    with pytest.raises(ValueError):
        V.Voice("rhvoice", "RHVoice-test", "slt")
    source = "\n".join(p.read_text("utf-8") for p in (REPO / "training").glob("*.py"))
    assert not re.search(r"""["']flite["']\s*,|\bpiper\b(?!-voice)""", source.replace("piper:joe", "")), "training/ must not synthesise with flite or piper"


@pytest.mark.skipif(not shutil.which("espeak-ng") or not shutil.which("sox"), reason="espeak-ng and sox make the tiny run's speech")
def test_tiny_training_run_builds_a_loadable_model(tmp_path, monkeypatch):
    pytest.importorskip("pyopen_wakeword")
    monkeypatch.setenv("VOICE_SKILL_TRAINING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("VOICE_SKILL_TRAINING_OUT", str(tmp_path / "out"))
    import importlib

    import training.features
    import training.voices

    importlib.reload(training.features)
    from training import train_neural

    importlib.reload(train_neural)
    out = tmp_path / "tiny.npz"
    assert train_neural.main(["--tiny", "--out", str(out)]) == 0
    assert out.stat().st_size < 1_000_000
    from voice_skill.recognizers.neural import NeuralDetector

    detector = NeuralDetector(out)
    assert detector.intents == ("question", "tip")
    speech = V.synthesize("give us a tip", V.voice_named("en-us+m3"), cache=tmp_path / "cache")
    audio = np.concatenate([np.zeros(32000, np.float32), speech, np.zeros(8000, np.float32)])
    end = (32000 + len(speech)) / 16000
    evidence = detector.score(audio, (end - 0.3, end + 0.3))
    assert set(evidence.scores) == {"question", "tip"}
    assert all(0.0 <= s <= 1.0 for s in evidence.scores.values())
    assert end - 0.3 - 1e-6 <= evidence.end <= end + 0.3 + 1e-6
    # The run wrote its dev report, and training made progress on its data.
    import json

    report = json.loads(out.with_suffix(".dev.json").read_text())
    losses = [epoch["loss"] for epoch in report["history"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert 0.0 < report["metrics"]["threshold"] <= 1.0


def test_fusion_tuning_replays_the_real_rule_over_kept_evidence(tmp_path, capsys):
    """training/tune_fusion.py: the evidence of each dev clip is replayed through the run-time
    fusion rule; a clip whose wake phrase fits and beats its rivals counts as heard, a near
    miss that a rival beats does not, and the grid prints a front of rules."""
    import pickle

    from training import tune_fusion
    from voice_skill.recognizers.verification import PhoneticEvidence

    good = PhoneticEvidence("give us a tip", -1.5, -2.5, 10.0, margin=0.3, rival="give us a kick")
    beaten = PhoneticEvidence("give us a tip", -2.0, -4.0, 10.0, margin=-0.8, rival="give us a kiss")
    weak = PhoneticEvidence("ask us a question", -7.0, -9.0, 10.0, margin=0.1, rival="ask us a riddle")
    records = [
        (("dev", "clean", "give us a tip", "trigger", "tip"), [("give us a tip", good, {"tip": 0.7}, False)]),
        (("dev", "fan5", "give us a kiss", "near", None), [("give us a tip", beaten, {"tip": 0.5}, True)]),
        (("dev", "ordinary", "the train was late", "ordinary", None), [("ask us a question", weak, None, False)]),
    ]
    path = tmp_path / "evidence.pkl"
    path.write_bytes(pickle.dumps(records))  # clips are kept as plain tuples (see collect)
    assert tune_fusion.main(["check", "--evidence", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fused    true accepts 1/1" in out and "near 0/1, ordinary 0/1" in out
    assert tune_fusion.main(["grid", "--evidence", str(path), "--baseline", str(tmp_path / "no-baseline.json")]) == 0
    front = capsys.readouterr().out.splitlines()
    assert front[0].startswith("Pareto front") and front[1].split()[0] == "1"
    # With the old engine's counts on the same clips, the pick may let through no more than it did.
    (tmp_path / "old.json").write_text(json.dumps({"commit": "old", "true_accepts": {"clean": 1}, "false_accepts": {"near": 1}}))
    assert tune_fusion.main(["grid", "--evidence", str(path), "--baseline", str(tmp_path / "old.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("the old engine old: 1 true accepts") and "at most 1 near-miss false accepts" in lines[-2]


def test_fusion_tuning_uses_dev_voices_and_dev_texts_only():
    from training import tune_fusion

    assert {v.key for v in V.DEV}.isdisjoint(V.EVALUATION_ONLY)
    held_out = set(_lines(BENCH / "heldout_near_misses.txt"))
    for name in ("dev_near_misses.txt", "dev_leadins.txt", "dev_sentences.txt"):
        texts = {normalize(t) for t in tune_fusion._lines(name)}
        assert texts and texts.isdisjoint(held_out) and texts.isdisjoint(_lines(ORDINARY_SENTENCES))


def test_command_tuning_uses_dev_texts_only():
    """training/tune_commands.py: its own list of everyday sentences with command words is a
    dev text like the others, never an evaluation text, and has sentences for it to hear."""
    from training import tune_commands

    held_out = set(_lines(BENCH / "heldout_near_misses.txt"))
    texts = {normalize(t) for t in tune_commands._lines("dev_command_sentences.txt")}
    assert len(texts) >= 20
    for source, evaluation in _evaluation_texts().items():
        padded = [f" {t} " for t in evaluation]
        clashes = sorted(t for t in texts if any(f" {t} " in p for p in padded) or t in evaluation)
        assert not clashes, f"bench/dev_command_sentences.txt contains {source}: {clashes}"
    assert texts.isdisjoint(held_out)
    table = load_triggers(REPO / "phrases" / "triggers.toml")
    words = tune_commands.command_words(tune_commands._commands(table))
    assert all(words & set(t.split()) for t in texts)


def test_command_tuning_replays_the_run_time_command_rule(tmp_path, capsys):
    """The command evidence of each dev clip is replayed through the command rule: a command
    that fits is heard, one said too slowly or fitting too poorly is not, and a command heard
    in ordinary speech is a false command."""
    import pickle

    from training import tune_commands

    records = [
        (("dev", "clean", "another one", "command", "another"), [("another one", -1.2, 9.0, -1.9, False, 7)]),
        (("dev", "fan5", "stop", "command", "stop"), [("stop", -3.9, 6.0, -4.6, False, 4)]),
        (("dev", "ordinary", "the train was late", "ordinary", None), [("next one", -5.5, 9.0, -7.0, False, 8)]),
        (("dev", "clean", "stop it", "words", None), [("stop", None, None, None, False, 4)]),
    ]
    path = tmp_path / "evidence.pkl"
    path.write_bytes(pickle.dumps(records))
    assert tune_commands.main(["check", "--evidence", str(path)]) == 0
    out = capsys.readouterr().out
    assert "the rule in force: heard 2/2" in out and "ordinary 0" in out  # "stop" at -3.9 clears the one-word bar (-4.0)
    assert tune_commands.main(["grid", "--evidence", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    pick = next(line for line in lines if line.startswith("pick:"))
    assert pick.startswith("pick: heard 2/2") and "ordinary 0" in pick
    sweep = lines[lines.index(pick) + 1 :]
    assert sweep[0].startswith("the one-word commands' own fit bar under the pick (1 one-word command clips)")
    assert any(line.strip().startswith("-3.5: one-word heard 0/1") for line in sweep)
    assert any(line.strip().startswith("-4.0: one-word heard 1/1") for line in sweep)
