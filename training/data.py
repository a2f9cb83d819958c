"""Training and dev clips for the neural wake signal, all a function of a seed.

Positives: every wake phrase of the default triggers (intents question and tip) by the
voices of a split, with rate, pitch and tempo spread, placed alone (after silence) or
run-on (0.05-0.25 s after another sentence by the same speaker), then a room: gain spread,
sometimes sox reverb, and coloured fan-like noise at 0-20 dB SNR (or only a faint floor).

Negatives: streams of ordinary sentences (training/sentences/*.txt) mixed with generated
hard negatives (training/confusions.py: partial phrases, sound-alike substitutions, crossed
intents), with short and long pauses, in the same rooms.

Sentences and generated phrases are split into train and dev by a fixed hash (20 % dev), so
dev negatives are unseen text spoken by unseen voices.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

from training.confusions import hard_negatives, is_dev_phrase
from training.voices import DEV, RATE, TRAIN, Voice, synthesize

TRAINING_DIR = Path(__file__).resolve().parent
REPO = TRAINING_DIR.parent
SENTENCE_DIR = TRAINING_DIR / "sentences"
TRIGGERS_FILE = REPO / "phrases" / "triggers.toml"
WAKE_INTENTS = ("question", "tip")
CLASSES = ("none",) + WAKE_INTENTS
REFERENCE_DBFS = -23.0  # active-speech RMS of a normal voice
TINY_PHRASES = {"question": ("ask us a question",), "tip": ("give us a tip",)}
FAMILY_WEIGHTS = {"espeak-ng": 0.40, "mbrola": 0.20, "pico": 0.12, "rhvoice": 0.28}


def read_sentences(directory: Path = SENTENCE_DIR) -> list[str]:
    out = []
    for path in sorted(directory.glob("*.txt")):
        for line in path.read_text("utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def wake_phrases(path: Path = TRIGGERS_FILE) -> dict[str, tuple[str, ...]]:
    from voice_skill.intents import load_triggers

    table = load_triggers(path)
    return {intent: table.intents[intent] for intent in WAKE_INTENTS}


def negative_texts(split: str, seed: int = 0) -> dict[str, list[str]]:
    """Ordinary sentences and generated hard negatives of one split ("train" or "dev").
    Training's ordinary sentences include training/templates.py's generated ones."""
    from voice_skill.intents import load_triggers

    want_dev = split == "dev"
    texts = {"ordinary": [s for s in read_sentences() if is_dev_phrase(s) == want_dev]}
    if not want_dev:  # generated everyday sentences with the wake words: training only
        from training.templates import template_sentences

        texts["ordinary"] += template_sentences()
    for source, phrases in hard_negatives(load_triggers(TRIGGERS_FILE), seed=0).items():
        texts[source] = [p for p in phrases if is_dev_phrase(p) == want_dev]
    return texts


def text_fingerprint(split: str) -> str:
    """Changes whenever the sentences, the generated phrases or the triggers change."""
    texts = negative_texts(split)
    blob = json.dumps([texts, wake_phrases()], sort_keys=True, default=list)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------- audio helpers


def db(x: float) -> float:
    return float(10 ** (x / 20))


def speech_rms(audio: np.ndarray) -> float:
    active = audio[np.abs(audio) > db(-60)]
    return float(np.sqrt(np.mean(np.square(active, dtype=np.float64)))) if len(active) else 0.0


def at_level(audio: np.ndarray, dbfs: float) -> np.ndarray:
    level = speech_rms(audio)
    return (audio * (db(dbfs) / level)).astype(np.float32) if level > 0 else audio


def coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Steady room noise, unit RMS: a random spectral slope (white to brown), a random
    roll-off, sometimes mains hum or a fan's blade tone."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    slope = rng.uniform(0.0, 2.0)  # power ~ 1/f^slope
    shape = 1 / np.maximum(freqs, 20.0) ** (slope / 2)
    shape /= np.sqrt(1 + (freqs / rng.uniform(1500, 7000)) ** 4)
    noise = np.fft.irfft(spectrum * shape, n)
    noise /= np.std(noise) + 1e-12
    if rng.random() < 0.3:
        t = np.arange(n) / RATE
        base = rng.choice([50.0, 60.0, rng.uniform(80, 240)])
        noise += rng.uniform(0.1, 0.6) * np.sin(2 * np.pi * base * t + rng.uniform(0, 6.3))
        noise /= np.std(noise)
    return noise.astype(np.float32)


def sox(audio: np.ndarray, effects: list[str]) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="training-sox-") as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        soundfile.write(str(src), audio, RATE, subtype="FLOAT")
        subprocess.run(["sox", str(src), str(dst), *effects], check=True, capture_output=True)
        out, _ = soundfile.read(str(dst), dtype="float32")
    return out.reshape(-1)


@dataclass(frozen=True)
class Room:
    gain_db: float  # speech level relative to REFERENCE_DBFS
    reverb: tuple[int, int, int] | None  # sox reverb: reverberance, HF damping, room scale
    snr_db: float | None  # None: only a faint floor
    floor_dbfs: float
    seed: int

    @staticmethod
    def draw(rng: random.Random, clean_share: float = 0.3, reverb_share: float = 0.25) -> Room:
        reverb = (rng.randint(20, 70), rng.randint(30, 80), rng.randint(20, 80)) if rng.random() < reverb_share else None
        snr = None if rng.random() < clean_share else rng.uniform(0.0, 20.0)
        return Room(rng.uniform(-20.0, 6.0), reverb, snr, rng.uniform(-75.0, -55.0), rng.randrange(2**31))

    def apply(self, audio: np.ndarray, speech_level: float) -> np.ndarray:
        """audio: speech at REFERENCE_DBFS (speech_level is its active RMS)."""
        out = audio
        if self.reverb is not None:
            n = len(out)
            out = sox(out, ["reverb", *map(str, self.reverb)])[:n]
        gain = db(self.gain_db)
        out = out * gain
        rng = np.random.default_rng(self.seed)
        noise = coloured_noise(len(out), rng)
        level = db(self.floor_dbfs)
        if self.snr_db is not None:
            level = max(level, speech_level * gain / db(self.snr_db))
        out = out + noise * level
        peak = float(np.max(np.abs(out))) if len(out) else 0.0
        if peak > 0.99:
            out = out * (0.99 / peak)
        return out.astype(np.float32)


# --------------------------------------------------------------------------- clips


@dataclass
class Clip:
    audio: np.ndarray
    events: list[tuple[float, int]] = field(default_factory=list)  # (phrase end in s, class index)
    ends: list[float] = field(default_factory=list)  # ends of negative utterances (hard negatives and sentences)
    hard_ends: list[tuple[float, str]] = field(default_factory=list)  # (end, text) of generated hard negatives
    kind: str = ""
    voice: str = ""
    condition: str = ""


@dataclass(frozen=True)
class DataSpec:
    voices: tuple[Voice, ...] = TRAIN
    split: str = "train"  # which sentences and generated phrases to use
    seed: int = 1
    positives_per_phrase: int = 300
    runon_share: float = 0.5
    negative_minutes: float = 150.0
    hard_share: float = 0.35  # of negative utterances, the share of generated hard negatives
    phrases: dict[str, tuple[str, ...]] | None = None  # default: the triggers file

    @staticmethod
    def tiny(seed: int = 1) -> DataSpec:
        # espeak-ng only, so that the test suite needs no MBROLA, pico or RHVoice
        few = tuple(v for v in TRAIN if v.name in ("en-us+m3", "en-gb+f2", "en-gb-scotland+klatt", "en-gb-x-rp+f5"))
        return DataSpec(voices=few, seed=seed, positives_per_phrase=6, negative_minutes=0.75, phrases=TINY_PHRASES)


def _pick_voice(rng: random.Random, voices: tuple[Voice, ...]) -> Voice:
    families = sorted({v.family for v in voices})
    weights = [FAMILY_WEIGHTS.get(f, 0.1) for f in families]
    family = rng.choices(families, weights)[0]
    return rng.choice([v for v in voices if v.family == family])


def _prosody(rng: random.Random) -> tuple[float, float]:
    return round(rng.uniform(0.75, 1.3) / 0.05) * 0.05, round(rng.uniform(0.7, 1.4) / 0.05) * 0.05


def _say(text: str, voice: Voice, rng: random.Random, tempo_share: float = 0.3) -> np.ndarray:
    rate, pitch = _prosody(rng)
    audio = synthesize(text, voice, rate=rate, pitch=pitch)
    if rng.random() < tempo_share:
        audio = sox(audio, ["tempo", "-s", f"{rng.uniform(0.85, 1.15):.3f}"])
    return at_level(audio, REFERENCE_DBFS + rng.uniform(-3.0, 3.0))


def positive_clip(text: str, cls: int, voice: Voice, rng: random.Random, sentences: list[str], runon: bool, room: Room, condition: str = "") -> Clip:
    phrase = _say(text, voice, rng)
    if runon:
        before = _say(rng.choice(sentences), voice, rng, tempo_share=0.0)
        lead = np.zeros(int(rng.uniform(0.1, 0.8) * RATE), np.float32)
        gap = np.zeros(int(rng.uniform(0.05, 0.25) * RATE), np.float32)
        head = np.concatenate([lead, before, gap])
    else:
        lead = max(0.2, 2.2 - len(phrase) / RATE) + rng.uniform(0.0, 0.8)
        head = np.zeros(int(lead * RATE), np.float32)
    tail = np.zeros(int(rng.uniform(0.6, 1.2) * RATE), np.float32)
    audio = np.concatenate([head, phrase, tail])
    end = (len(head) + len(phrase)) / RATE
    out = room.apply(audio, db(REFERENCE_DBFS))
    return Clip(out, [(end, cls)], kind="runon" if runon else "alone", voice=voice.key, condition=condition)


def negative_stream(texts: list[tuple[str, str]], voices: list[Voice], rng: random.Random, room: Room) -> Clip:
    """Utterances (source, text) one after another, by one or two voices, with pauses."""
    parts = [np.zeros(int(rng.uniform(0.2, 1.0) * RATE), np.float32)]
    t = len(parts[0]) / RATE
    ends, hard = [], []
    for source, text in texts:
        audio = _say(text, rng.choice(voices), rng)
        parts.append(audio)
        t += len(audio) / RATE
        ends.append(t)
        if source != "ordinary":
            hard.append((t, text))
        pause = rng.uniform(0.05, 0.3) if rng.random() < 0.4 else rng.uniform(0.3, 2.0)
        parts.append(np.zeros(int(pause * RATE), np.float32))
        t += len(parts[-1]) / RATE
    audio = np.concatenate(parts)
    return Clip(room.apply(audio, db(REFERENCE_DBFS)), ends=ends, hard_ends=hard, kind="negative", voice="+".join(v.key for v in voices))


def generate(spec: DataSpec):
    """Yield clips: positives first, then negative streams. Deterministic for a spec."""
    rng = random.Random(spec.seed)
    phrases = spec.phrases or wake_phrases()
    texts = negative_texts(spec.split)
    sentences = texts["ordinary"]
    voices = spec.voices
    for ci, intent in enumerate(WAKE_INTENTS, start=1):
        for text in phrases[intent]:
            for _ in range(spec.positives_per_phrase):
                voice = _pick_voice(rng, voices)
                runon = rng.random() < spec.runon_share
                yield positive_clip(text, ci, voice, rng, sentences, runon, Room.draw(rng))
    hard = [(source, p) for source in ("partial", "crossed", "substitution", "runtime") for p in texts[source]]
    total = 0.0
    while total < spec.negative_minutes * 60:
        count = rng.randint(4, 10)
        items = [rng.choice(hard) if rng.random() < spec.hard_share else ("ordinary", rng.choice(sentences)) for _ in range(count)]
        stream_voices = [_pick_voice(rng, voices) for _ in range(rng.choice((1, 1, 2)))]
        clip = negative_stream(items, stream_voices, rng, Room.draw(rng))
        total += len(clip.audio) / RATE
        yield clip


def dev_clips(seed: int = 7, voices: tuple[Voice, ...] = DEV, renditions: tuple[float, ...] = (0.9, 1.1), negative_minutes: float = 60.0, hard_minutes: float = 15.0, phrases: dict[str, tuple[str, ...]] | None = None):
    """The fixed dev set: for every dev voice, wake phrase and rate, four conditions (clean
    alone, clean run-on, fan noise at 10 and at 5 dB SNR, alone), then streams of dev sentences
    (condition "ordinary") and streams of dev hard negatives (condition "hard") by dev voices,
    in clean and noisy rooms."""
    rng = random.Random(seed)
    phrases = phrases or wake_phrases()
    texts = negative_texts("dev")
    sentences = texts["ordinary"]
    conditions = {"clean": (False, None), "runon": (True, None), "snr10": (False, 10.0), "snr5": (False, 5.0)}
    for voice in voices:
        for ci, intent in enumerate(WAKE_INTENTS, start=1):
            for text in phrases[intent]:
                for rate in renditions:
                    for name, (runon, snr) in conditions.items():
                        room = Room(0.0, None, snr, -70.0, rng.randrange(2**31))
                        phrase = at_level(synthesize(text, voice, rate=rate), REFERENCE_DBFS)
                        sub = random.Random(zlib.crc32(f"{voice.key}|{text}|{rate}|{name}".encode()))
                        clip = _place(phrase, ci, voice, sub, sentences, runon, room, rate)
                        clip.condition = name
                        yield clip
    hard = [(s, p) for s in ("partial", "crossed", "substitution", "runtime") for p in texts[s]]
    # ordinary speech (false accepts per hour) and generated hard negatives (near-miss rate)
    # in separate streams, so that each is measured on its own
    for condition, minutes in (("ordinary", negative_minutes), ("hard", hard_minutes)):
        total = 0.0
        while total < minutes * 60:
            if condition == "ordinary":
                items = [("ordinary", rng.choice(sentences)) for _ in range(rng.randint(4, 10))]
            else:
                items = [rng.choice(hard) for _ in range(rng.randint(4, 10))]
            room = Room.draw(rng, clean_share=0.5, reverb_share=0.0)
            clip = negative_stream(items, [rng.choice(voices)], rng, room)
            clip.condition = condition
            total += len(clip.audio) / RATE
            yield clip


def _place(phrase: np.ndarray, cls: int, voice: Voice, rng: random.Random, sentences: list[str], runon: bool, room: Room, rate: float) -> Clip:
    if runon:
        before = at_level(synthesize(rng.choice(sentences), voice, rate=rate), REFERENCE_DBFS)
        head = np.concatenate([np.zeros(int(0.5 * RATE), np.float32), before, np.zeros(int(rng.uniform(0.05, 0.25) * RATE), np.float32)])
    else:
        head = np.zeros(int(max(0.5, 3.0 - len(phrase) / RATE) * RATE), np.float32)
    audio = np.concatenate([head, phrase, np.zeros(int(1.0 * RATE), np.float32)])
    end = (len(head) + len(phrase)) / RATE
    return Clip(room.apply(audio, db(REFERENCE_DBFS)), [(end, cls)], kind="runon" if runon else "alone", voice=voice.key)
