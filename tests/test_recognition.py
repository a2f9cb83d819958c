"""Real speech (flite and Piper voices, never used in training or tuning) through the real
wake engine and the intent matcher."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
import pytest

from audio_factory import FLITE_VOICES, add_noise, flite, sequence, silence, to_pcm
from conftest import requires_flite
from voice_skill.intents import IntentMatcher, load_triggers
from voice_skill.phrases import bundled_phrases_dir
from voice_skill.recognizers.choose import build_wake_engine

pytestmark = [pytest.mark.audio, requires_flite]

TABLE = load_triggers(bundled_phrases_dir() / "triggers.toml")
WAKE_PHRASES = [(p, intent) for intent in ("question", "tip") for p in TABLE.intents[intent]]
# Sound-alikes the engine knows about: the trigger table's decoys (a decoy that fits better
# always wins) and generated ones (voice_skill.recognizers.confusions; the wake phrase may fit
# a little worse than one of those and still be accepted, so some of them fire).
KNOWN_DECOYS = [
    "ask him a question", "i have a question", "give it a tip", "tell us a story",
    "give us a minute", "tell us the time", "i'll give you a tip", "ask a question",
]
KNOWN_SOUND_ALIKES = ["give us a kick", "ask us the question", "tell us a trip", "give me a tips"]
# Held out: in no decoy list, confusion set or training set (bench/heldout_near_misses.txt
# holds the bench's; these are the tests' own, checked below).
HELD_OUT_SOUND_ALIKES = ["they gave us a tip", "ask us the way", "tell us a tale", "what a good tip"]
ORDINARY = [
    "I think we should go to the market tomorrow morning before it gets busy.",
    "Did you see the game last night? It was unbelievable.",
    "He asked a question about the homework and the teacher laughed.",
    "Ask your sister if she wants to come over for dinner.",
    "Here is a tip for the waiter.",
    "Let us ask them a question about the tickets.",
    "Turn off the light when you come to bed.",
    "Give the dog a bath, it smells terrible.",
]


ENGINES = {"v3": True, "v2": False}  # with the judge (where ctranslate2 installs), and without it (32-bit Arm, or judge = false)


@pytest.fixture(scope="module", params=list(ENGINES))
def engine_factory(request):
    """The wake engine, each test run with both: v3, with the judge, and v2, without it.
    make.version says which."""

    def make(signals: str = "fused"):
        return build_wake_engine(signals, TABLE, report=lambda line: None, judge=ENGINES[request.param])

    make.version = request.param
    return make


def detect(recognizer, audio) -> list[tuple[str, float]]:
    matcher = IntentMatcher(TABLE)
    pcm = to_pcm(audio)
    results = []
    for i in range(0, len(pcm), 3200):
        results += recognizer.feed(pcm[i : i + 3200])
    results += recognizer.finish()
    found = []
    for heard in results:
        intent = matcher.match(heard)
        if intent:
            found.append((intent.kind, intent.at))
    return found


def score(found, spans, expected_intents) -> tuple[int, list[str]]:
    """(phrases heard in time with their intent, problems: wrong intents and stray wakes)."""
    hits, problems, used = 0, [], set()
    for span, want in zip(spans, expected_intents):
        near = [(i, (intent, at)) for i, (intent, at) in enumerate(found) if span.end - 0.2 <= at <= span.end + 1.0]
        for i, (intent, _) in near:
            used.add(i)
            if intent != want:
                problems.append(f"{span.text!r} fired {intent}")
        hits += any(intent == want for _, (intent, _) in near)
    problems += [f"stray wake {found[i]}" for i in range(len(found)) if i not in used]
    return hits, problems


# The engines' thresholds are picked on development voices (never these). Measured on these
# flite voices (see docs/wake-engine.md), v2 (the default) hears 24 of 24 clean phrases, 24 of
# 24 with a fan at 20 dB and 12 of 12 right after a sentence, and 8 of 16 generated and 2 of 16
# held-out sound-alikes fire; v3 (the judge) hears 23, 21 (slt: 4 of 6 in the fan) and 12, and
# no sound-alike fires. The floors below are those counts: a change that loses a phrase or
# fires more often fails here. Every phrase is also checked for its intent and its timing.
FLOORS = {
    "v2": {"clean": 24, "fan20dB": 24, "run-on": 12, "generated": 8, "held-out": 2},
    "v3": {"clean": 23, "fan20dB": 21, "run-on": 12, "generated": 0, "held-out": 0},
}


@pytest.fixture(scope="module")
def each_voice_once(audio_cache, engine_factory):
    heard = {}
    for voice in FLITE_VOICES:
        items = [(p, flite(p, voice, audio_cache)) for p, _ in WAKE_PHRASES]
        audio, spans = sequence(items)
        heard[("clean", voice)] = score(detect(engine_factory(), audio), spans, [i for _, i in WAKE_PHRASES])
        noisy = add_noise(audio, 20, seed=zlib.crc32(voice.encode()))
        heard[("fan20dB", voice)] = score(detect(engine_factory(), noisy), spans, [i for _, i in WAKE_PHRASES])
    return heard


@pytest.mark.parametrize("condition", ["clean", "fan20dB"])
def test_every_trigger_detected_with_its_intent(condition, each_voice_once, engine_factory):
    results = {voice: each_voice_once[(condition, voice)] for voice in FLITE_VOICES}
    hits = sum(h for h, _ in results.values())
    problems = [p for _, ps in results.values() for p in ps]
    assert problems == []
    assert hits >= FLOORS[engine_factory.version][condition], {voice: h for voice, (h, _) in results.items()}


def test_a_trigger_right_after_another_sentence_is_heard(audio_cache: Path, engine_factory):
    """No pause to speak of (0.1 s) between a sentence and the wake phrase: one utterance."""
    hits, problems = 0, []
    for voice in ("kal16", "awb"):
        lead = flite("okay, we are in bed now", voice, audio_cache)
        parts = [(phrase, np.concatenate([lead, silence(0.1), flite(phrase, voice, audio_cache)])) for phrase, _ in WAKE_PHRASES]
        audio, spans = sequence(parts, gap=2.5)
        h, p = score(detect(engine_factory(), audio), spans, [i for _, i in WAKE_PHRASES])
        hits, problems = hits + h, problems + p
    assert problems == []
    assert hits >= FLOORS[engine_factory.version]["run-on"]


@pytest.mark.parametrize("voice", FLITE_VOICES)
def test_decoys_and_ordinary_speech_never_fire(voice, audio_cache: Path, engine_factory):
    items = [(p, flite(p, voice, audio_cache)) for p in KNOWN_DECOYS + ORDINARY]
    audio, _ = sequence(items, gap=1.5)
    assert detect(engine_factory(), audio) == []


def test_generated_sound_alikes_rarely_fire(audio_cache: Path, engine_factory):
    """Generated sound-alikes (4 phrases x 4 voices). Measured: with v2, 8 of 16 fire (the
    issue's target, 0 on sound-alikes the engine knows, is not met); with v3, none."""
    fired = []
    for voice in FLITE_VOICES:
        audio, _ = sequence([(p, flite(p, voice, audio_cache)) for p in KNOWN_SOUND_ALIKES], gap=1.5)
        fired += [(voice, intent, at) for intent, at in detect(engine_factory(), audio)]
    assert len(fired) <= FLOORS[engine_factory.version]["generated"], fired


def test_held_out_sound_alikes_rarely_fire(audio_cache: Path, engine_factory):
    """Sound-alikes in no decoy list, confusion set or training set, each said on its own.
    Measured: with v2, 2 of the 16 (4 phrases x 4 voices) fire (on kal16 and awb); with v3,
    none."""
    fired = []
    for voice in FLITE_VOICES:
        items = [(p, flite(p, voice, audio_cache)) for p in HELD_OUT_SOUND_ALIKES]
        audio, spans = sequence(items, gap=1.5)
        fired += [(voice, intent, at) for intent, at in detect(engine_factory(), audio)]
    assert len(fired) <= FLOORS[engine_factory.version]["held-out"], fired


def test_the_held_out_sound_alikes_are_in_no_decoy_list_or_confusion_set():
    from voice_skill.recognizers.confusions import confusion_phrases

    generated = {c for p, _ in WAKE_PHRASES for c in confusion_phrases(p)}
    for sentence in HELD_OUT_SOUND_ALIKES:
        assert sentence not in TABLE.decoys and sentence not in generated
    assert set(KNOWN_DECOYS) <= set(TABLE.decoys)
    assert set(KNOWN_SOUND_ALIKES) <= generated


def test_one_utterance_fires_once(audio_cache: Path, engine_factory):
    # The same phrase said twice in one breath is one utterance: one wake, not two.
    phrase = flite("ask us a question ask us a question", "slt", audio_cache)
    audio, _ = sequence([("double", phrase)])
    assert len(detect(engine_factory(), audio)) <= 1


def test_a_wake_phrase_after_a_long_sentence_is_heard(audio_cache: Path, engine_factory):
    long_sentence = flite(ORDINARY[0] + " " + ORDINARY[1], "kal16", audio_cache)
    assert len(long_sentence) / 16000 > 4.0
    items = [("long", long_sentence), ("ask us a question", flite("ask us a question", "kal16", audio_cache))]
    audio, spans = sequence(items, gap=1.5)
    found = detect(engine_factory(), audio)
    assert [intent for intent, _ in found] == ["question"]
    assert spans[1].end - 0.2 <= found[0][1] <= spans[1].end + 1.0


def test_each_decision_is_explained_in_the_debug_log(audio_cache: Path, engine_factory, caplog):
    audio, _ = sequence([("give us a tip", flite("give us a tip", "rms", audio_cache)), ("give it a tip", flite("give it a tip", "rms", audio_cache))])
    with caplog.at_level(logging.DEBUG, logger="voice_skill.recognizers"):
        detect(engine_factory(), audio)
    decisions = [r.getMessage() for r in caplog.records if "->" in r.getMessage()]
    assert any("'give us a tip'" in d and "accept" in d for d in decisions), decisions
    for line in decisions:
        if engine_factory.version == "v2":  # every stage's evidence: the fit, the margin against rivals, the neural scores
            assert "fit" in line and "margin" in line and "neural" in line, line
        else:  # the fit, and what the judge heard and how it scored the phrase (or why it was not asked)
            assert "fit" in line and ("judge heard" in line and "/token" in line or "judge was not asked" in line), line
    if engine_factory.version == "v3":
        accepted = next(d for d in decisions if "'give us a tip'" in d and "accept" in d)
        assert "judge heard" in accepted, accepted


def test_commands_must_be_the_whole_utterance(audio_cache: Path, engine_factory):
    """A command word at the end of a sentence is not a command ("... it got a bit louder")."""
    lead = flite("the television next door got", "kal16", audio_cache)
    audio, _ = sequence([("run-on", np.concatenate([lead, silence(0.1), flite("a bit louder", "kal16", audio_cache)]))])
    assert detect(engine_factory(), audio) == []
    alone, _ = sequence([("a bit louder", flite("a bit louder", "kal16", audio_cache))])
    assert [i for i, _ in detect(engine_factory(), alone)] == ["louder"]


def test_only_the_grammar_words_are_read_from_the_dictionary():
    from voice_skill.recognizers.sphinx import model_paths, read_pronunciations

    found = read_pronunciations(model_paths()[1], {"a", "question", "tip", "notaword"})
    assert set(found) == {"a", "question", "tip"}
    assert ("a(2)", "EY") in found["a"]  # alternative pronunciations come along
    assert found["tip"] == [("tip", "T IH P")]


def test_a_few_words_and_thousands_are_read_alike_from_the_dictionary():
    """read_pronunciations finds a grammar's few words with one regular expression and
    thousands line by line: both ways give the same entries."""
    from voice_skill.recognizers.confusions import read_frequencies
    from voice_skill.recognizers.sphinx import FEW_WORDS, model_paths, read_pronunciations

    many = set(sorted(read_frequencies())[: FEW_WORDS * 3]) | {"that's", "a", "question"}
    every = read_pronunciations(model_paths()[1], many)
    for few in (sorted(many)[::7][:FEW_WORDS], ["that's", "a", "question", "notaword"]):
        assert read_pronunciations(model_paths()[1], set(few)) == {w: every[w] for w in few if w in every}


def test_a_command_that_does_not_fit_never_acts(audio_cache: Path, caplog):
    """"stop" under a loud fan, held to the bar of the longer commands (-2.5: under the
    one-word bar, -4.0, it is heard): the spotter ends on the command, its words do not fit
    well enough for a command, no wake phrase fits either, and nothing is reported as heard
    (the command once was, and acted)."""
    from voice_skill.recognizers.fusion import FusionRule
    from voice_skill.recognizers.wake_engine import EngineOptions

    strict = EngineOptions(rule=FusionRule(min_one_word_command_score=-2.5))
    stop = flite("stop", "kal16", audio_cache)
    audio, _ = sequence([("stop", stop)] * 3, gap=1.5)
    found, refused = [], []
    for snr in (10, 5):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="voice_skill.recognizers"):
            found += detect(build_wake_engine("fused", TABLE, report=lambda line: None, options=strict), add_noise(audio, snr, seed=3))
        refused += [r.getMessage() for r in caplog.records if "ends with 'stop', but no wake phrase fits" in r.getMessage()]
    assert refused, "no 'stop' was refused both ways: this test no longer tests the path it is for"
    assert found == []


def test_the_observer_sees_each_command_decision_with_its_evidence(audio_cache: Path, engine_factory):
    """training/tune_commands.py (v2) and training/tune_judged.py commands-collect (v3) keep
    what the observer sees of each command: the phrase, its fit and speaking rate, the
    judge's score of it (v3), and whether it was heard under the rule in force."""
    from voice_skill.recognizers.wake_engine import CommandDecision, JudgedCommand

    engine = engine_factory()
    seen: list = []
    engine.observer = seen.append
    audio, _ = sequence([("a bit louder", flite("a bit louder", "kal16", audio_cache))])
    assert [i for i, _ in detect(engine, audio)] == ["louder"]
    commands = [d for d in seen if isinstance(d, (CommandDecision, JudgedCommand))]
    assert len(commands) == 1 and commands[0].heard and commands[0].phonetic.text == "a bit louder"
    assert commands[0].phonetic.phones_per_second > 0 and commands[0].phonetic.frame_score > -99
    if engine_factory.version == "v3":
        assert isinstance(commands[0], JudgedCommand) and commands[0].judgement.scores["a bit louder"].score > -3.0
