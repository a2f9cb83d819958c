"""Real pyttsx3 / espeak-ng synthesis to memory, and the chime."""

from __future__ import annotations

import numpy as np
import pytest

from audio_factory import rms
from conftest import requires_espeak
from voice_skill.audio import chime
from voice_skill.speech import SpeechError, Synthesizer, Voice

pytestmark = requires_espeak

QUESTION = "From sunrise to sunset, what would your perfect day look like?"


@pytest.fixture(scope="module")
def synthesizer():
    with Synthesizer() as synth:
        synth.start()
        yield synth


def speech_seconds(sound) -> float:
    """Duration of the part that is not silence (frames above -40 dBFS)."""
    frame = sound.rate // 50
    samples = sound.samples[: len(sound.samples) // frame * frame].astype(np.float32) / 32768
    levels = np.sqrt((samples.reshape(-1, frame) ** 2).mean(axis=1))
    return float((levels > 0.01).sum() * frame / sound.rate)


def test_renders_an_answer_to_memory(synthesizer):
    sound = synthesizer.render(QUESTION)
    assert sound.rate == 22050
    assert 2.5 < sound.duration < 8.0
    assert speech_seconds(sound) > 1.5
    assert rms(sound.samples.astype(np.float32) / 32768) > 0.01


def test_bedtime_voice_is_slower_and_softer_than_pyttsx3_defaults(synthesizer):
    bedtime = synthesizer.render(QUESTION)
    default = synthesizer.render(QUESTION, Voice(rate=200, volume=1.0))
    assert Voice().rate < 200 and Voice().volume < 1.0
    assert bedtime.duration > default.duration * 1.2
    peak = lambda s: np.percentile(np.abs(s.samples.astype(np.float32)), 99)  # noqa: E731
    assert peak(bedtime) < peak(default) * 0.8


def test_empty_text_is_an_error_not_a_hang(synthesizer):
    with pytest.raises(SpeechError):
        synthesizer.render("")
    assert synthesizer.render("Good night.").duration > 0.3  # the worker still works


def test_chime_is_short_soft_and_audible():
    bell = chime(22050, volume=0.6)
    assert 0.15 < bell.duration < 0.5
    level = np.abs(bell.samples).max() / 32767
    assert 0.05 < level < 0.3


def test_a_hung_engine_is_abandoned_and_replaced():
    hang = "import sys, time; sys.stdout.write('{\"status\": \"ready\"}\\n'); sys.stdout.flush(); sys.stdin.readline(); time.sleep(60)"
    import sys

    synth = Synthesizer(timeout=1.0, command=[sys.executable, "-c", hang])
    with pytest.raises(SpeechError, match="longer than 1 s"):
        synth.render("hello")
    synth.close()


def test_missing_engine_is_a_speech_error():
    synth = Synthesizer(command=["/nonexistent/espeak-worker"])
    with pytest.raises(SpeechError, match="cannot start"):
        synth.start()


def test_voice_adjustments_are_bounded_and_stored(tmp_path):
    from voice_skill.speech import VoiceStore, adjusted

    voice = Voice()
    assert adjusted(voice, "softer").volume < voice.volume < adjusted(voice, "louder").volume
    assert adjusted(voice, "slower").rate < voice.rate < adjusted(voice, "faster").rate
    quiet = voice
    for _ in range(20):
        quiet = adjusted(quiet, "softer")
    assert quiet.volume == 0.05  # never silent
    store = VoiceStore(tmp_path / "state" / "voice.json")
    assert store.load(voice) == voice
    store.save(adjusted(voice, "slower"))
    assert store.load(voice).rate == voice.rate - 20
    (tmp_path / "state" / "voice.json").write_text("{broken")
    assert store.load(voice) == voice


def test_rendering_ahead_never_blocks_on_a_worker_that_stopped_reading():
    """prepare() is called from the listening loop: a hung worker whose pipe is full must not
    stop the loop (500 requests of 1 KiB fill a 64 KiB pipe many times over)."""
    import sys
    import threading

    deaf = "import sys, time; sys.stdout.write('{\"status\": \"ready\"}\\n'); sys.stdout.flush(); time.sleep(60)"
    synth = Synthesizer(command=[sys.executable, "-c", deaf])
    synth.start()
    done = threading.Event()

    def prepare_many():
        for i in range(500):
            synth.prepare([f"answer number {i}, " + "and so on " * 100])
        done.set()

    threading.Thread(target=prepare_many, daemon=True).start()
    try:
        assert done.wait(10), "prepare() blocked on a worker that does not read"
    finally:
        synth._kill_worker()
