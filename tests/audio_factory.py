"""Test audio, made not recorded: flite speech, silence, generated room noise, mixing."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

RATE = 16000
FLITE_VOICES = ("kal16", "slt", "rms", "awb")


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def read_mono16k(path: Path) -> np.ndarray:
    """Any sound file as float32 16 kHz mono."""
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != RATE:
        mono = soxr.resample(mono, rate, RATE)
    return mono.astype(np.float32)


def _cached(cache: Path, key: str, make) -> np.ndarray:
    path = cache / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".wav")
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.wav")
        make(tmp)
        tmp.rename(path)
    return read_mono16k(path)


def flite(text: str, voice: str, cache: Path) -> np.ndarray:
    """Speech from flite as float32 16 kHz mono."""
    return _cached(cache, f"flite|{voice}|{text}", lambda out: subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True))


def espeak(text: str, voice: str, cache: Path) -> np.ndarray:
    """Speech from espeak-ng (for languages flite lacks) as float32 16 kHz mono."""
    return _cached(cache, f"espeak|{voice}|{text}", lambda out: subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True))


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def fan_noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Steady fan-like room noise: pink (1/f) noise with a gentle roll-off above 4 kHz, unit RMS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    shape = 1 / np.sqrt(np.maximum(freqs, 20.0))
    shape /= np.sqrt(1 + (freqs / 4000.0) ** 4)
    noise = np.fft.irfft(spectrum * shape, n)
    return (noise / (np.std(noise) + 1e-12)).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


@dataclass(frozen=True)
class Span:
    text: str
    start: float
    end: float


def sequence(items: list[tuple[str, np.ndarray]], gap: float = 2.0, lead: float = 1.0) -> tuple[np.ndarray, list[Span]]:
    """Utterances separated by silence; returns the audio and where each one is."""
    parts = [silence(lead)]
    spans = []
    t = lead
    for text, audio in items:
        spans.append(Span(text, t, t + len(audio) / RATE))
        parts += [audio, silence(gap)]
        t += len(audio) / RATE + gap
    return np.concatenate(parts), spans


def add_noise(audio: np.ndarray, snr_db: float, seed: int = 1, speech_level: float | None = None) -> np.ndarray:
    """Mix fan noise at the given SNR relative to the speech level (RMS of the non-silent part)."""
    level = speech_level if speech_level is not None else rms(audio[np.abs(audio) > 1e-4])
    noise = fan_noise(len(audio) / RATE, seed)[: len(audio)] * level / (10 ** (snr_db / 20))
    mixed = audio + noise
    peak = np.max(np.abs(mixed))
    return (mixed / peak * 0.9 if peak > 0.99 else mixed).astype(np.float32)


def to_pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> Path:
    soundfile.write(str(path), audio, rate, subtype=subtype)
    return path
