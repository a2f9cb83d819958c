"""Real speech (flite, several voices) through the real recognizers and the intent matcher."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from audio_factory import FLITE_VOICES, add_noise, flite, sequence, to_pcm
from conftest import requires_flite
from voice_skill.intents import IntentMatcher, load_triggers
from voice_skill.phrases import bundled_phrases_dir
from voice_skill.recognizers.pocketsphinx_recognizer import PocketsphinxRecognizer

pytestmark = [pytest.mark.audio, requires_flite]

TABLE = load_triggers(bundled_phrases_dir() / "triggers.toml")
WAKE_PHRASES = [(p, intent) for intent in ("question", "tip") for p in TABLE.intents[intent]]
NEAR_MISSES = [
    "ask him a question", "i have a question", "give it a tip", "tell us a story",
    # everyday requests one word away from a wake phrase (decoys in triggers.toml)
    "give us a minute", "tell us the time", "i'll give you a tip",
]
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


def detect(recognizer, audio) -> list[tuple[str, float]]:
    matcher = IntentMatcher(TABLE)
    pcm = to_pcm(audio)
    found = []
    step = 3200
    results = []
    for i in range(0, len(pcm), step):
        results += recognizer.feed(pcm[i : i + step])
    results += recognizer.finish()
    for heard in results:
        intent = matcher.match(heard)
        if intent:
            found.append((intent.kind, intent.at))
    return found


def pocketsphinx() -> PocketsphinxRecognizer:
    return PocketsphinxRecognizer(TABLE.phrases(), list(TABLE.decoys))


def assert_each_detected(found, spans, expected_intents):
    assert len(found) == len(spans), f"expected {len(spans)} detections, got {found}"
    for (intent, at), span, want in zip(found, spans, expected_intents):
        assert intent == want, f"{span.text!r} fired {intent}"
        assert span.end - 0.2 <= at <= span.end + 1.0, f"{span.text!r} ended at {span.end:.2f}, fired at {at:.2f}"


@pytest.mark.parametrize("voice", FLITE_VOICES)
@pytest.mark.parametrize("snr_db", [None, 20], ids=["clean", "fan20dB"])
def test_every_trigger_detected_with_its_intent(voice, snr_db, audio_cache: Path):
    items = [(p, flite(p, voice, audio_cache)) for p, _ in WAKE_PHRASES]
    audio, spans = sequence(items)
    if snr_db is not None:
        audio = add_noise(audio, snr_db, seed=zlib.crc32(voice.encode()))
    found = detect(pocketsphinx(), audio)
    assert_each_detected(found, spans, [intent for _, intent in WAKE_PHRASES])


@pytest.mark.parametrize("voice", FLITE_VOICES)
def test_near_misses_and_ordinary_speech_never_fire(voice, audio_cache: Path):
    items = [(p, flite(p, voice, audio_cache)) for p in NEAR_MISSES + ORDINARY]
    audio, _ = sequence(items, gap=1.5)
    assert detect(pocketsphinx(), audio) == []


def test_one_utterance_fires_once(audio_cache: Path):
    # The same phrase said twice in one breath is one utterance: one wake, not two.
    phrase = flite("ask us a question ask us a question", "slt", audio_cache)
    audio, _ = sequence([("double", phrase)])
    found = detect(pocketsphinx(), audio)
    assert len(found) <= 1


def test_a_wake_phrase_after_a_long_sentence_is_heard(audio_cache: Path):
    # Speech longer than any wake phrase is not decoded past that length; the next utterance
    # is decoded from its start again.
    long_sentence = flite(ORDINARY[0] + " " + ORDINARY[1], "kal16", audio_cache)
    assert len(long_sentence) / 16000 > 4.0
    items = [("long", long_sentence), ("ask us a question", flite("ask us a question", "kal16", audio_cache))]
    audio, spans = sequence(items, gap=1.5)
    found = detect(pocketsphinx(), audio)
    assert [intent for intent, _ in found] == ["question"]
    assert spans[1].end - 0.2 <= found[0][1] <= spans[1].end + 1.0


def test_only_the_grammar_words_are_read_from_the_dictionary():
    from voice_skill.recognizers.pocketsphinx_recognizer import _model_paths, read_pronunciations

    found = read_pronunciations(_model_paths()[1], {"a", "question", "tip", "notaword"})
    assert set(found) == {"a", "question", "tip"}
    assert ("a(2)", "EY") in found["a"]  # alternative pronunciations come along
    assert found["tip"] == [("tip", "T IH P")]
