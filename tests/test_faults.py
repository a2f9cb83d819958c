"""Faults the skill survives: synthesis failing or hanging, an unwritable state folder,
a recognizer that chokes on a piece of audio, a microphone that goes and comes back."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import pytest

from audio_factory import flite, sequence, write_wav
from conftest import json_events, requires_flite, run_cli
from voice_skill import audio
from voice_skill.audio import LiveMicrophone, Microphone, WavSource, chime
from voice_skill.intents import IntentMatcher, load_triggers
from voice_skill.phrases import PhraseBag, bundled_phrases_dir, load_library
from voice_skill.recognizers.wake_engine import WakeEngine
from voice_skill.runner import EventWriter, Runner, SpokenAnswers
from voice_skill.skill import Skill
from voice_skill.speech import Synthesizer

pytestmark = requires_flite

TABLE = load_triggers(bundled_phrases_dir() / "triggers.toml")
BROKEN_ENGINE = "import json; print(json.dumps({'status': 'error', 'detail': 'espeak-ng is not installed'}), flush=True)"
HUNG_ENGINE = "import sys, time; print('{\"status\": \"ready\"}', flush=True); sys.stdin.readline(); time.sleep(60)"


@pytest.fixture()
def two_wakes_wav(tmp_path, audio_cache) -> Path:
    items = [(t, flite(t, "kal16", audio_cache)) for t in ("ask us a question", "give us a tip")]
    audio, _ = sequence(items, gap=3.0)
    return write_wav(tmp_path / "two.wav", audio)


def run_session(wav: Path, answers=None, recognizer=None) -> list[dict]:
    out = io.StringIO()
    bag = PhraseBag(load_library([bundled_phrases_dir()]))
    runner = Runner(
        WavSource(wav), recognizer or WakeEngine(TABLE), IntentMatcher(TABLE),
        Skill(lambda wanted: bag.draw(wanted.kind)), EventWriter(out, as_json=True), answers,
    )
    runner.run()
    return json_events(out.getvalue())


@pytest.mark.parametrize("engine", [BROKEN_ENGINE, HUNG_ENGINE], ids=["engine-missing", "engine-hangs"])
def test_failing_synthesis_answers_with_the_chime_and_keeps_listening(room, two_wakes_wav, monkeypatch, caplog, engine):
    for key in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH"):
        monkeypatch.setenv(key, room.env[key])
    from voice_skill.audio import Speaker, reinitialize_portaudio, resolve_device

    reinitialize_portaudio()
    synthesizer = Synthesizer(timeout=1.0, command=[sys.executable, "-c", engine])
    answers = SpokenAnswers(synthesizer, Speaker(resolve_device("pulse", "output")))
    with caplog.at_level(logging.ERROR, logger="voice_skill"):
        events = run_session(two_wakes_wav, answers)
    synthesizer.close()
    says = [e for e in events if e["event"] == "say"]
    assert [e["intent"] for e in says] == ["question", "tip"]
    bell = chime().duration
    assert all(abs(e["seconds"] - bell) < 0.01 for e in says), says  # the chime alone
    assert caplog.text.count("speech synthesis failed") == 1


def test_when_piper_fails_mid_night_the_espeak_voice_answers(room, tmp_path, audio_cache, monkeypatch, caplog):
    """pyttsx3 is the fallback: a Piper worker that hangs on every answer is abandoned after
    its timeout, and the answer is said in the espeak-ng voice (logged once), not a chime alone."""
    for key in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH"):
        monkeypatch.setenv(key, room.env[key])
    from voice_skill.audio import Speaker, reinitialize_portaudio, resolve_device
    from voice_skill.speech import SpeechEngine

    reinitialize_portaudio()
    piper = Synthesizer(timeout=1.0, command=[sys.executable, "-c", HUNG_ENGINE], engine=SpeechEngine("piper", Path("joe.onnx")))
    answers = SpokenAnswers(piper, Speaker(resolve_device("pulse", "output")), fallback=Synthesizer())
    # Spoken answers take their time: the second phrase comes after the first answer's end.
    items = [(t, flite(t, "kal16", audio_cache)) for t in ("ask us a question", "give us a tip")]
    audio, _ = sequence(items, gap=14.0)
    with caplog.at_level(logging.ERROR, logger="voice_skill"):
        events = run_session(write_wav(tmp_path / "two-far-apart.wav", audio), answers)
    answers.close()
    says = [e for e in events if e["event"] == "say"]
    assert [e["intent"] for e in says] == ["question", "tip"]
    assert all(e["seconds"] > chime().duration + 1.0 for e in says), says  # spoken
    assert caplog.text.count("answering in the espeak-ng voice instead") == 1, caplog.text
    assert "chime only" not in caplog.text


def test_unwritable_state_folder_works_without_persistence(tmp_path, two_wakes_wav, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    result = run_cli("run", "--input", str(two_wakes_wav), "--no-speak", "--json")
    assert result.returncode == 0, result.stderr
    assert [e["intent"] for e in json_events(result.stdout) if e["event"] == "say"] == ["question", "tip"]
    assert result.stderr.count("cannot save the phrase state") == 1, result.stderr


class ChokesOnce(WakeEngine):
    """The real recognizer, made to fail on one piece of odd audio."""

    def __init__(self, *args, fail_at: int, **kwargs):
        super().__init__(*args, **kwargs)
        self._calls = 0
        self._fail_at = fail_at

    def feed(self, pcm: bytes):
        self._calls += 1
        if self._calls == self._fail_at:
            raise RuntimeError("odd audio")
        return super().feed(pcm)


def test_a_recognizer_error_drops_the_chunk_and_listening_goes_on(two_wakes_wav, caplog):
    recognizer = ChokesOnce(TABLE, fail_at=3)
    with caplog.at_level(logging.ERROR, logger="voice_skill"):
        events = run_session(two_wakes_wav, recognizer=recognizer)
    assert [e["intent"] for e in events if e["event"] == "wake"] == ["question", "tip"]
    assert "the recognizer failed on a piece of audio" in caplog.text
    assert json.dumps(events)  # a normal end: the done event is there
    assert events[-1]["event"] == "done"


class FakeSoundDevice:
    """sounddevice with one microphone, whose streams deliver their first block `first_block` s
    after they start, then a block every 0.1 s (`blocks` in all, None: without end) until it is
    unplugged (unplug(): then a stream ends, and it cannot be opened for a while)."""

    def __init__(self, plugged_at: float = 0.0, first_block: float = 0.1, blocks: int | None = None):
        self.plugged_at, self.first_block, self.blocks = plugged_at, first_block, blocks
        self.attempts: list[float] = []  # when the skill looked for the microphone

    def unplug(self, seconds: float) -> None:
        self.plugged_at = time.monotonic() + seconds

    def _terminate(self) -> None:
        pass

    def _initialize(self) -> None:
        self.attempts.append(time.monotonic())

    def check_input_settings(self, **settings) -> None:
        if time.monotonic() < self.plugged_at:
            raise RuntimeError("Error querying device -1")

    def query_devices(self, device=None, kind=None):
        if time.monotonic() < self.plugged_at:
            raise RuntimeError("Error querying device -1")
        return {"name": "USB microphone", "default_samplerate": 16000.0}

    def InputStream(self, samplerate, blocksize, callback, **settings):
        fake = self

        class Stream:
            latency = 0.01
            active = False

            def start(self) -> None:
                self.active = True
                threading.Thread(target=self._deliver, daemon=True).start()

            def _deliver(self) -> None:
                time.sleep(fake.first_block)
                sent = 0
                while self.active and (fake.blocks is None or sent < fake.blocks):
                    if time.monotonic() < fake.plugged_at:
                        self.active = False  # as PortAudio's stream does when its device goes
                        return
                    callback(np.zeros((blocksize, 1), dtype=np.int16), blocksize, None, SimpleNamespace(input_overflow=False))
                    sent += 1
                    time.sleep(blocksize / samplerate)

            def abort(self) -> None:
                self.active = False

            def close(self) -> None:
                self.active = False

        return Stream()


def test_a_microphone_whose_first_block_comes_late_is_not_taken_for_lost(monkeypatch):
    """A sound server's idle source starts late (the virtual room's: 0 to 2 s after opening):
    a stream given up before its first block would be an outage of its own (issue 23)."""
    monkeypatch.setattr(audio, "_sounddevice", lambda: FakeSoundDevice(first_block=Microphone.STALL_SECONDS + 0.6))
    mic = Microphone()
    try:
        block, _ = next(mic.timed_blocks())
    finally:
        mic.close()
    assert len(block) == 1600


def test_a_microphone_that_stops_delivering_is_lost_after_the_stall_time(monkeypatch):
    from voice_skill.audio import DeviceLost

    monkeypatch.setattr(audio, "_sounddevice", lambda: FakeSoundDevice(blocks=3))
    mic = Microphone()
    started = time.monotonic()
    try:
        with pytest.raises(DeviceLost, match="stopped delivering audio"):
            for _ in mic.timed_blocks():
                pass
    finally:
        mic.close()
    assert Microphone.STALL_SECONDS < time.monotonic() - started < Microphone.STALL_SECONDS + 1.5


def test_a_microphone_plugged_in_again_is_heard_at_once_and_the_clock_counts_the_outage(monkeypatch, caplog):
    """Issue 23: unplugged for four seconds, and heard again within about half a second of
    being plugged back in (the old back-off, 0.5 s doubling, looked again only 7.5 s after the
    loss); looked for every 0.5 s, said once in the log; stream time goes on through the outage."""
    fake = FakeSoundDevice()
    monkeypatch.setattr(audio, "_sounddevice", lambda: fake)
    lost: list[str] = []
    source = LiveMicrophone(on_lost=lost.append)
    chunks = source.chunks()
    try:
        before = next(chunks)
        with caplog.at_level(logging.DEBUG, logger="voice_skill"):
            fake.unplug(4.0)
            after = next(chunks)
            while time.monotonic() < fake.plugged_at:  # blocks captured before it was pulled out
                before, after = after, next(chunks)
            heard_again = time.monotonic()
    finally:
        source.close()
    print(f"heard again {heard_again - fake.plugged_at:.2f} s after being plugged in; looked for it {len(fake.attempts)} times")
    assert heard_again - fake.plugged_at < 1.0
    assert lost == ["the microphone stopped delivering audio"]
    assert len(fake.attempts) >= 7
    assert caplog.text.count("microphone lost") == 1 and "microphone back after" in caplog.text
    assert 4.0 < after.start - before.start < 5.5  # the outage is counted on the stream's clock
