"""Building the recognizer the settings ask for; `auto` prefers Vosk when a model is present."""

from __future__ import annotations

import logging
from pathlib import Path

from voice_skill.errors import UserError
from voice_skill.intents import TriggerTable
from voice_skill.models import find_model
from voice_skill.recognizers.base import Recognizer

log = logging.getLogger(__name__)


def build_recognizer(engine: str, model: str | None, table: TriggerTable, report=print) -> Recognizer:
    """engine: auto | vosk | pocketsphinx. `report` gets one line saying which engine is used."""
    phrases, decoys = table.phrases(), list(table.decoys)
    model_path: Path | None = find_model(model)
    if engine == "vosk" or (engine == "auto" and model_path is not None):
        if model_path is None:
            raise UserError("--engine vosk needs a model: run 'voice-skill model download' or pass --model PATH")
        from voice_skill.recognizers.vosk_recognizer import VoskRecognizer, load_model

        recognizer = VoskRecognizer(load_model(model_path), phrases, decoys)
        report(f"voice-skill: using Vosk with the model in {model_path}")
        return recognizer
    if engine not in ("auto", "pocketsphinx"):
        raise UserError(f"--engine {engine}: unknown engine; use auto, vosk or pocketsphinx")
    from voice_skill.recognizers.pocketsphinx_recognizer import PocketsphinxRecognizer

    recognizer = PocketsphinxRecognizer(phrases, decoys)
    if engine == "auto":
        report("voice-skill: using PocketSphinx (bundled English model); for Vosk, run 'voice-skill model download'")
    else:
        report("voice-skill: using PocketSphinx (bundled English model)")
    return recognizer
