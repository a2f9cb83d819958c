"""Speech and rooms, made not recorded: flite and espeak-ng voices, sox effects, levels, noise.

Synthesised and processed utterances are cached as WAV files (keyed by everything that went
into them), so a second corpus build costs almost nothing. Room noise is the test suite's
fan noise (tests/audio_factory.py), so "fan noise at 10 dB" means the same thing in the
tests and in the bench.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile

_TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(_TESTS) not in sys.path:
    sys.path.append(str(_TESTS))

from audio_factory import fan_noise, read_mono16k, rms  # noqa: E402  (the project's one definition of room noise)

RATE = 16000
REFERENCE_DBFS = -23.0  # active-speech RMS of a normal voice at the microphone
TRIM_DBFS = -50.0  # synthesiser lead-in and tail below this are cut, so spans are exact


def db_to_gain(db: float) -> float:
    return float(10 ** (db / 20))


@dataclass(frozen=True)
class Voice:
    name: str  # how the bench reports it
    engine: str  # "flite" or "espeak"
    id: str  # the synthesiser's own voice name

    def command(self, text: str, stretch: float, out: Path) -> list[str]:
        """The synthesiser call; stretch > 1 speaks more slowly."""
        if self.engine == "flite":
            return ["flite", "-voice", self.id, "--setf", f"duration_stretch={stretch:.3f}", "-t", text, "-o", str(out)]
        if self.engine == "espeak":
            return ["espeak-ng", "-v", self.id, "-s", str(round(175 / stretch)), "-w", str(out), text]
        raise ValueError(f"unknown speech engine {self.engine!r}")


FLITE_VOICES = tuple(Voice(v, "flite", v) for v in ("kal16", "slt", "rms", "awb"))
ESPEAK_VOICE = Voice("espeak", "espeak", "en-us")
VOICES = FLITE_VOICES + (ESPEAK_VOICE,)


def voice_named(name: str) -> Voice:
    for voice in VOICES:
        if voice.name == name:
            return voice
    raise KeyError(f"unknown voice {name!r}; known: {', '.join(v.name for v in VOICES)}")


def write_wav(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.clip(audio, -1.0, 1.0), RATE, subtype="PCM_16")


@dataclass(frozen=True)
class AudioCache:
    """Generated audio on disk, one WAV per distinct recipe."""

    root: Path

    def get(self, recipe: str, make: Callable[[Path], None]) -> np.ndarray:
        path = self.root / (hashlib.sha1(recipe.encode()).hexdigest()[:20] + ".wav")
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part.wav")
            make(tmp)
            tmp.replace(path)
        return read_mono16k(path)


def trim(audio: np.ndarray, floor_dbfs: float = TRIM_DBFS) -> np.ndarray:
    """Cut leading and trailing near-silence (the synthesiser's padding)."""
    loud = np.flatnonzero(np.abs(audio) > db_to_gain(floor_dbfs))
    return audio[loud[0] : loud[-1] + 1] if len(loud) else audio[:0]


def speech_rms(audio: np.ndarray) -> float:
    """RMS of the active part (samples above -60 dBFS), the level a listener judges."""
    active = audio[np.abs(audio) > db_to_gain(-60.0)]
    return rms(active)


def at_level(audio: np.ndarray, dbfs: float) -> np.ndarray:
    level = speech_rms(audio)
    return (audio * (db_to_gain(dbfs) / level)).astype(np.float32) if level > 0 else audio


def synthesize(text: str, voice: Voice, cache: AudioCache, stretch: float = 1.0) -> np.ndarray:
    """One utterance, trimmed, at the reference level."""
    recipe = f"speech|{voice.engine}|{voice.id}|{stretch:.3f}|{text}"
    audio = cache.get(recipe, lambda out: subprocess.run(voice.command(text, stretch, out), check=True, capture_output=True))
    return at_level(trim(audio), REFERENCE_DBFS)


def sox(audio: np.ndarray, effects: tuple[str, ...]) -> np.ndarray:
    """Run sox effects on a mono 16 kHz signal."""
    if not effects:
        return audio
    with tempfile.TemporaryDirectory(prefix="bench-sox-") as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        soundfile.write(str(src), audio, RATE, subtype="FLOAT")
        subprocess.run(["sox", str(src), str(dst), *effects], check=True, capture_output=True)
        return read_mono16k(dst)


def room_noise(seconds: float, dbfs: float, seed: int) -> np.ndarray:
    """Steady fan / room tone at the given RMS level."""
    return (fan_noise(seconds, seed) * db_to_gain(dbfs)).astype(np.float32)
