"""Building the recognizer the settings ask for; `auto` prefers Vosk when a model is present."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from voice_skill.errors import UserError
from voice_skill.intents import TriggerTable
from voice_skill.models import find_model
from voice_skill.recognizers.base import Recognizer

log = logging.getLogger(__name__)


def build_recognizer(recognition, table: TriggerTable, report=print) -> Recognizer:
    """recognition: the [recognition] settings (engine auto | vosk | pocketsphinx, model,
    wake_signals). `report` gets one line saying which engine is used, and one more if the
    neural wake signal cannot run on this machine."""
    engine = recognition.engine
    phrases, decoys = table.phrases(), list(table.decoys)
    model_path: Path | None = find_model(recognition.model)
    if engine == "vosk" or (engine == "auto" and model_path is not None):
        if model_path is None:
            raise UserError("--engine vosk needs a model: run 'voice-skill model download' or pass --model PATH")
        from voice_skill.recognizers.vosk_recognizer import VoskRecognizer, load_model

        recognizer = VoskRecognizer(load_model(model_path), phrases, decoys)
        report(f"voice-skill: using Vosk with the model in {model_path}")
        return recognizer
    if engine not in ("auto", "pocketsphinx"):
        raise UserError(f"--engine {engine}: unknown engine; use auto, vosk or pocketsphinx")
    return build_wake_engine(recognition.wake_signals, table, report, engine == "auto")


def build_wake_engine(signals: str, table: TriggerTable, report=print, auto: bool = False, options=None) -> Recognizer:
    from voice_skill.recognizers.fusion import PHONETIC, SIGNALS
    from voice_skill.recognizers.wake_engine import EngineOptions, WakeEngine

    if signals not in SIGNALS:
        raise UserError(f"--wake-signals {signals}: unknown; use {', '.join(SIGNALS)}")
    options = options or EngineOptions()
    options = replace(options, rule=replace(options.rule, signals=signals))
    neural = None
    if signals != PHONETIC:
        from voice_skill.recognizers.neural import NeuralUnavailable, load_detector

        try:
            neural = load_detector(Path(options.neural_model) if options.neural_model else None)
        except NeuralUnavailable as exc:
            if signals == "neural":
                raise UserError(f"--wake-signals neural: {exc}; use --wake-signals phonetic") from None
            report(f"voice-skill: {exc}; listening with the phonetic wake engine alone")
    recognizer = WakeEngine(table, options, neural)
    how = {"fused": "phonetic and neural wake signals" if neural else "phonetic wake signal", "phonetic": "phonetic wake signal only", "neural": "neural wake signal only"}[signals]
    suffix = "; for Vosk, run 'voice-skill model download'" if auto else ""
    report(f"voice-skill: using PocketSphinx (bundled English model) with the {how}{suffix}")
    return recognizer
