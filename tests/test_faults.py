"""Faults the skill survives: synthesis failing or hanging, an unwritable state folder,
a recognizer that chokes on a piece of audio."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest

from audio_factory import flite, sequence, write_wav
from conftest import json_events, requires_flite, run_cli
from voice_skill.audio import WavSource, chime
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
