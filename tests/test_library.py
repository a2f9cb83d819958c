"""The shipped library as it will be heard: every phrase through espeak-ng at the bedtime rate,
and the no-repeat promise through the real command."""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import requires_espeak
from voice_skill.cli import main
from voice_skill.phrases import bundled_phrases_dir, load_library
from voice_skill.speech import Synthesizer

LIBRARY = load_library([bundled_phrases_dir()])
MAX_SECONDS = 20.0
COMMANDS = ["ask us a question", "ask me a question", "give us a question", "give us a tip", "tell us a tip",
            "give me a tip", "another one", "next one", "repeat that", "say that again", "that's enough",
            "go deeper", "something deeper", "something lighter", "lighter please", "skip that one", "not that one",
            "skip this one", "i like that one", "save that one", "keep that one", "goodnight", "good night"]


@requires_espeak
def test_every_phrase_renders_audibly_and_not_too_long():
    too_long, silent = [], []
    with Synthesizer() as synth:
        for phrase in LIBRARY:
            sound = synth.render(phrase.text)
            samples = np.abs(sound.samples.astype(np.float32)) / 32768
            if sound.duration > MAX_SECONDS:
                too_long.append(f"{phrase.id} ({sound.duration:.1f} s)")
            # audible: at least a second of speech above -40 dBFS in 20 ms frames
            frame = sound.rate // 50
            levels = np.sqrt((samples[: len(samples) // frame * frame].reshape(-1, frame) ** 2).mean(axis=1))
            if (levels > 0.01).sum() * 0.02 < 1.0:
                silent.append(phrase.id)
    assert not too_long, f"over {MAX_SECONDS:.0f} s at the bedtime rate: {too_long}"
    assert not silent, f"rendered (nearly) silent: {silent}"


def test_texts_are_written_for_the_ear():
    for phrase in LIBRARY:
        text = phrase.text
        assert not re.search(r"[0-9&%/()\[\]\"*#@]|\be\.g\.|\betc\.", text), f"{phrase.source}: {text}"
        assert len(text.split()) <= 50, f"{phrase.source}: too long to say"
        said = text.lower()
        assert not any(command in said for command in COMMANDS), f"{phrase.source} contains a voice command"


def test_timed_moments():
    timed = [p for p in LIBRARY if p.seconds is not None]
    assert len(timed) >= 8 and all(p.kind == "tip" for p in timed)
    assert {p.seconds for p in timed} >= {60, 120, 600}  # a minute, two minutes, ten minutes with phones away
    assert all(10 <= p.seconds <= 1800 for p in timed)


def test_a_hundred_say_calls_never_repeat(capsys):
    spoken = []
    for _ in range(100):
        assert main(["say", "question", "--no-speak"]) == 0
        spoken.append(capsys.readouterr().out.strip())
    assert len(set(spoken)) == 100
