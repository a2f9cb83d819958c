"""The training voices, their train/dev split, and cached synthesis.

Only these synthesisers are training voices: espeak-ng (accents x variants), MBROLA through
espeak-ng, SVOX pico (pico2wave) and RHVoice. The evaluation voices (the flite voices kal16,
slt, rms, awb and the Piper voice joe) are never used here, nor RHVoice's ``slt`` (the same
CMU Arctic speaker as flite's slt). ``EVALUATION_ONLY`` names them so that code can refuse
them.

The split is by voice family: DEV voices share neither speaker nor, for espeak-ng, accent
or variant with TRAIN. DEV is what thresholds, epochs and fusion rules are picked on (the
phonetic path too); TRAIN is what the network learns from.

    from training.voices import TRAIN, DEV, synthesize
    audio = synthesize("ask us a question", DEV[0], rate=0.9, pitch=1.1)

``synthesize`` returns float32 16 kHz mono, trimmed of the synthesiser's leading and trailing
near-silence, at the engine's own level; results are cached on disk (one WAV per recipe).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

RATE = 16000
TRAINING_DIR = Path(__file__).resolve().parent
DEFAULT_CACHE = TRAINING_DIR / "out" / "cache"
TRIM_DBFS = -50.0
TRIM_MARGIN = 0.01  # seconds kept either side of the loud part

# Never a training voice. RHVoice's slt is the CMU Arctic slt speaker, like flite's slt.
EVALUATION_ONLY = frozenset({"flite:kal16", "flite:slt", "flite:rms", "flite:awb", "piper:joe", "rhvoice:slt"})


@dataclass(frozen=True)
class Voice:
    family: str  # "espeak-ng", "mbrola", "pico", "rhvoice"
    engine: str  # the program: "espeak-ng", "pico2wave", "RHVoice-test"
    id: str  # the engine's voice: "en-gb-scotland", "mb-us3", "en-GB", "clb"
    variant: str = ""  # espeak-ng voice variant ("m3", "klatt2"); "" for the voice's own

    @property
    def name(self) -> str:
        return f"{self.id}+{self.variant}" if self.variant else self.id

    @property
    def key(self) -> str:
        return f"{self.family}:{self.name}"

    def __post_init__(self) -> None:
        if self.key in EVALUATION_ONLY or f"{self.family}:{self.id}" in EVALUATION_ONLY:
            raise ValueError(f"{self.key} is an evaluation voice and may not be used for training")


# espeak-ng: accents x variants. Train and dev use disjoint accents and disjoint variants.
# Plain "en-us" without a variant is the bench's espeak-ng voice: left out of training too.
TRAIN_ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan")
TRAIN_ESPEAK_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m7", "m8",
    "f1", "f2", "f3", "f5",
    "klatt", "klatt2", "klatt3", "klatt5", "klatt6",
    "adam", "Alex", "Alicia", "Andy", "Annie", "aunty", "belinda", "benjamin", "caleb",
    "david", "ed", "edward", "linda", "max", "Mike", "paul", "quincy", "rob", "robert",
    "steph", "travis", "victor", "zac", "grandma", "grandpa", "Lee", "john", "shelby",
)
DEV_ESPEAK = (("en-gb-x-gbcwmd", "f4"), ("en-029", "m6"), ("en-us-nyc", "klatt4"))

TRAIN: tuple[Voice, ...] = (
    tuple(Voice("espeak-ng", "espeak-ng", accent, variant) for accent in TRAIN_ESPEAK_ACCENTS for variant in TRAIN_ESPEAK_VARIANTS)
    + tuple(Voice("mbrola", "espeak-ng", v) for v in ("mb-us1", "mb-us2", "mb-en1"))
    + (Voice("pico", "pico2wave", "en-US"),)
    + tuple(Voice("rhvoice", "RHVoice-test", v) for v in ("alan", "bdl", "evgeniy-eng", "lyubov"))
)
DEV: tuple[Voice, ...] = (
    tuple(Voice("espeak-ng", "espeak-ng", accent, variant) for accent, variant in DEV_ESPEAK)
    + (Voice("mbrola", "espeak-ng", "mb-us3"), Voice("pico", "pico2wave", "en-GB"), Voice("rhvoice", "RHVoice-test", "clb"))
)


# Wake engine v3's judge (a Whisper model trained elsewhere, on natural speech) and its fusion
# rule were trained on none of these voices; only v2's neural detector was trained on TRAIN.
# So v3's thresholds may be picked on DEV plus the TRAIN voices that are not espeak-ng (the
# most natural voices this machine has: MBROLA, pico, RHVoice); v2's never are.
JUDGE_DEV: tuple[Voice, ...] = DEV + tuple(v for v in TRAIN if v.family != "espeak-ng")


def _check_split() -> None:
    train_accents = {v.id for v in TRAIN if v.family == "espeak-ng"}
    train_variants = {v.variant for v in TRAIN if v.family == "espeak-ng"}
    for voice in DEV:
        assert voice not in TRAIN
        if voice.family == "espeak-ng":
            assert voice.id not in train_accents and voice.variant not in train_variants, voice
        else:
            assert all(t.id != voice.id for t in TRAIN), voice


_check_split()


def voice_named(name: str) -> Voice:
    for voice in TRAIN + DEV:
        if voice.name == name or voice.key == name:
            return voice
    raise KeyError(f"unknown training voice {name!r}")


def _command(text: str, voice: Voice, rate: float, pitch: float, out: Path) -> tuple[list[str], str | None]:
    """The synthesiser call and its standard input. rate and pitch are relative (1.0: default)."""
    if voice.engine == "espeak-ng":
        name = voice.id + (f"+{voice.variant}" if voice.variant else "")
        speed = str(round(175 * rate))
        return ["espeak-ng", "-v", name, "-s", speed, "-p", str(int(np.clip(round(50 * pitch), 0, 99))), "-w", str(out), text], None
    if voice.engine == "pico2wave":
        ssml = f"<speed level='{round(100 * rate)}'><pitch level='{round(100 * pitch)}'>{text}</pitch></speed>"
        return ["pico2wave", "-l", voice.id, "-w", str(out), ssml], None
    if voice.engine == "RHVoice-test":
        return ["RHVoice-test", "-p", voice.id, "-r", str(round(100 * rate)), "-t", str(round(100 * pitch)), "-o", str(out)], text
    raise ValueError(f"unknown engine {voice.engine!r}")


def trim(audio: np.ndarray, floor_dbfs: float = TRIM_DBFS) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > 10 ** (floor_dbfs / 20))
    if not len(loud):
        return audio[:0]
    margin = int(TRIM_MARGIN * RATE)
    return audio[max(0, loud[0] - margin) : loud[-1] + 1 + margin]


def _read(path: Path) -> np.ndarray:
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != RATE:
        mono = soxr.resample(mono, rate, RATE, quality="HQ")
    return mono.astype(np.float32)


def cache_dir() -> Path:
    return Path(os.environ.get("VOICE_SKILL_TRAINING_CACHE", DEFAULT_CACHE))


def synthesize(text: str, voice: Voice, rate: float = 1.0, pitch: float = 1.0, cache: Path | None = None) -> np.ndarray:
    """One utterance as float32 16 kHz mono, trimmed; cached under ``cache`` (default training/out/cache)."""
    root = cache if cache is not None else cache_dir()
    recipe = f"v1|{voice.engine}|{voice.id}|{voice.variant}|{rate:.3f}|{pitch:.3f}|{text}"
    digest = hashlib.sha1(recipe.encode()).hexdigest()
    path = root / digest[:2] / f"{digest[2:20]}.wav"
    if path.exists():
        return soundfile.read(str(path), dtype="float32")[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voices-") as tmp:
        raw = Path(tmp) / "raw.wav"
        argv, stdin = _command(text, voice, rate, pitch, raw)
        subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True)
        audio = trim(_read(raw))
    if not len(audio):
        raise RuntimeError(f"{voice.key} produced no audio for {text!r}")
    part = path.with_suffix(f".{os.getpid()}.part.wav")  # two runs may render the same clip at once
    soundfile.write(str(part), audio, RATE, subtype="FLOAT")
    part.replace(path)
    return audio
