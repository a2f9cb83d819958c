"""Vosk (Kaldi) recognition restricted to the trigger phrases with a grammar.

The grammar holds the trigger phrases, the decoys and "[unk]" (anything else) when the
model knows it. Partial results let a phrase fire as soon as it is complete and every word
is confident, instead of waiting for the endpoint; the final result is checked the same way.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from voice_skill.errors import UserError
from voice_skill.recognizers.base import SAMPLE_RATE, Heard

log = logging.getLogger(__name__)

DEFAULT_MIN_CONFIDENCE = 0.6


def load_model(path: Path):
    import vosk

    vosk.SetLogLevel(-1)
    if not path.is_dir():
        raise UserError(f"Vosk model folder {path} does not exist; run 'voice-skill model download' or pass --model with a model folder")
    if not (path / "am").is_dir() and not (path / "final.mdl").exists():
        raise UserError(f"{path} is not a Vosk model folder (no am/ inside); unzip a model from the Vosk model list into models/")
    try:
        return vosk.Model(str(path))
    except Exception:
        raise UserError(f"Vosk could not load the model in {path}; it is damaged or incomplete: download it again") from None


def model_words(model, words: set[str]) -> set[str]:
    """The subset of words that the model's vocabulary contains."""
    return {w for w in words if model.find_word(w) != -1}


class VoskRecognizer:
    name = "vosk"

    def __init__(self, model, phrases: list[str], decoys: list[str] = (), min_confidence: float = DEFAULT_MIN_CONFIDENCE):
        import vosk

        self._triggers = set(phrases)
        vocabulary = model_words(model, {w for p in list(phrases) + list(decoys) for w in p.split()} | {"[unk]"})
        for phrase in self._triggers:
            missing = [w for w in phrase.split() if w not in vocabulary]
            if missing:
                raise UserError(f"trigger phrase {phrase!r}: word(s) {', '.join(missing)} are not in the Vosk model's vocabulary; choose other words or another model")
        grammar = sorted(self._triggers) + [d for d in decoys if all(w in vocabulary for w in d.split())]
        if "[unk]" in vocabulary:
            grammar.append("[unk]")
        self._recognizer = vosk.KaldiRecognizer(model, SAMPLE_RATE, json.dumps(grammar, ensure_ascii=False))
        self._recognizer.SetWords(True)
        self._recognizer.SetPartialWords(True)
        self._min_confidence = min_confidence
        self._utterance = 1
        self._samples = 0

    def _now(self) -> float:
        return self._samples / SAMPLE_RATE

    def feed(self, pcm: bytes) -> list[Heard]:
        self._samples += len(pcm) // 2
        if self._recognizer.AcceptWaveform(pcm):
            return self._final(json.loads(self._recognizer.Result()))
        return self._partial(json.loads(self._recognizer.PartialResult()))

    def _heard(self, text: str, words: list[dict], final: bool) -> Heard | None:
        text = " ".join(text.split())
        if not text or not words:
            return None
        confidences = tuple((w.get("word", ""), float(w.get("conf", 0.0))) for w in words)
        confidence = min(c for _, c in confidences)
        start = words[0].get("start")
        end = words[-1].get("end") if final else None
        return Heard(text, self._utterance, self._now(), confidence, final, start, end, confidences)

    def _partial(self, result: dict) -> list[Heard]:
        text = result.get("partial", "")
        if text not in self._triggers:
            return []
        heard = self._heard(text, result.get("partial_result", []), final=False)
        if heard is None or heard.confidence < self._min_confidence:
            return []
        return [heard]

    def _final(self, result: dict) -> list[Heard]:
        heard = self._heard(result.get("text", ""), result.get("result", []), final=True)
        self._utterance += 1
        if heard is None:
            return []
        if heard.text in self._triggers and heard.confidence < self._min_confidence:
            log.debug("final result rejected: confidence %.2f", heard.confidence)
            return []
        return [heard]

    def finish(self) -> list[Heard]:
        return self._final(json.loads(self._recognizer.FinalResult()))

    def reset(self) -> None:
        self._recognizer.Reset()
        self._utterance += 1
