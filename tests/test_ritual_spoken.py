"""The ritual spoken: real speech in (flite, the wake engine), real speech out (espeak-ng through
the speech worker), a speaker that keeps what it is given instead of a sound card."""

from __future__ import annotations

import io
import json
import random
import threading
from datetime import datetime, time, timezone

import numpy as np
import pytest

from audio_factory import flite, sequence, write_wav
from conftest import json_events, requires_espeak, requires_flite
from voice_skill.audio import Playback, Sound, WavSource, chime
from voice_skill.intents import IntentMatcher, load_triggers
from voice_skill.memory import Memory
from voice_skill.night import NightVoice, StreamClock
from voice_skill.phrases import ContentFilter, Phrase, PhraseBag, bundled_phrases_dir
from voice_skill.picker import Picker
from voice_skill.recognizers.choose import build_wake_engine
from voice_skill.runner import EventWriter, Runner, SpokenAnswers
from voice_skill.skill import Skill
from voice_skill.speech import Synthesizer, Voice, VoiceStore

pytestmark = [requires_flite, requires_espeak]

UTC = timezone.utc
TABLE = load_triggers(bundled_phrases_dir() / "triggers.toml")
TIMED_SECONDS = 10


class KeepingSpeaker:
    """Takes each sound as a speaker would, at once, and keeps it."""

    def __init__(self):
        self.played: list[Sound] = []

    def play(self, sound: Sound) -> Playback:
        self.played.append(sound)
        thread = threading.Thread(target=lambda: None)
        thread.start()
        thread.join()
        playback = Playback(thread, threading.Event())
        playback.mark_first_sample()
        playback.completed = True
        return playback


def library() -> list[Phrase]:
    return [
        Phrase("q-a", "question", "c", "light", "What made you smile?", "test:1"),
        Phrase("q-b", "question", "c", "light", "What did you dream of?", "test:2"),
        Phrase("t-timed", "tip", "c", "light", "Hold hands.", "test:3", TIMED_SECONDS),
    ]


def chime_volume(sound: Sound) -> float | None:
    """The volume the sound's chime was made at (every spoken line starts with it)."""
    for volume in np.round(np.arange(0.05, 1.001, 0.05), 2):
        bell = chime(sound.rate, float(volume)).samples
        if np.array_equal(sound.samples[: len(bell)], bell):
            return float(volume)
    return None


@pytest.fixture()
def night_session(tmp_path, audio_cache):
    said = ["ask us a question", "speak louder", "another one", "give us a tip"]
    audio, spans = sequence([(t, flite(t, "kal16", audio_cache)) for t in said], gap=4.0)
    audio = np.concatenate([audio, np.zeros(16000 * (TIMED_SECONDS + 3), dtype=np.float32)])
    return write_wav(tmp_path / "late.wav", audio)


def test_late_at_night_answers_are_softer_louder_wins_and_times_up_is_said(night_session, tmp_path):
    out, speaker = io.StringIO(), KeepingSpeaker()
    day_voice = Voice(140, 0.6)
    store = VoiceStore(tmp_path / "voice.json")
    clock = StreamClock(datetime(2026, 11, 26, 23, 30, tzinfo=UTC), UTC)  # half past eleven
    picker = Picker(PhraseBag(library(), rng=random.Random(1)), Memory(), ContentFilter(), random.Random(1))
    skill = Skill(picker, clock=clock, names=("Sam", "Alex"))
    with Synthesizer(day_voice) as synthesizer:
        runner = Runner(
            WavSource(night_session), build_wake_engine("fused", TABLE, report=lambda line: None), IntentMatcher(TABLE),
            skill, EventWriter(out, as_json=True), SpokenAnswers(synthesizer, speaker),
            voice=day_voice, voice_store=store, night_voice=NightVoice(0.4, time(23, 0), time(6, 0)),
        )
        runner.run()
    events = json_events(out.getvalue())
    says = [e for e in events if e["event"] == "say"]
    assert [(e["intent"], e.get("to"), e["volume"]) for e in says] == [
        ("question", "Sam", 0.4), ("another", "Alex", 0.55), ("tip", None, 0.55),
    ], events
    # What the speaker was given: question, "Louder.", another, the tip, "Time's up.", each
    # starting with the chime at the volume it was said at.
    assert [chime_volume(s) for s in speaker.played] == [0.4, 0.55, 0.55, 0.55, 0.55]
    timer = next(e for e in events if e["event"] == "timer")
    done = next(e for e in events if e["event"] == "timer_done")
    tip = says[2]
    assert timer["at"] == pytest.approx(tip["at"] + tip["seconds"], abs=0.01)  # the silence starts after the tip is said
    assert TIMED_SECONDS <= done["at"] - timer["at"] <= TIMED_SECONDS + 0.2 and not done["stopped"]
    # "speak louder" at night lasts the night; the saved day volume is unchanged.
    assert json.loads((tmp_path / "voice.json").read_text()) == {"rate": 140, "volume": 0.6}
