"""Vosk (Kaldi) recognition restricted to the trigger phrases with a grammar.

The grammar holds the trigger phrases, the decoys and "[unk]" (anything else) when the
model knows it. Partial results let a phrase fire as soon as it is complete and every word
is confident, instead of waiting for the endpoint; the final result is checked the same way.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from voice_skill.errors import UserError
from voice_skill.recognizers.base import SAMPLE_RATE, Heard

log = logging.getLogger(__name__)

DEFAULT_MIN_CONFIDENCE = 0.7
MAX_EXTRA_WORDS = 1  # grammar words besides the trigger allowed in one result
KALDI_LINE = re.compile(r"(LOG|WARNING|ERROR|VLOG\[\d+\]) \(VoskAPI:")


def kaldi_line(line: str) -> bool:
    """A line of Kaldi's own log ("LOG (VoskAPI:...", "WARNING (VoskAPI:...", "ERROR (VoskAPI:...")."""
    return KALDI_LINE.match(line) is not None


def load_model(path: Path):
    import vosk

    vosk.SetLogLevel(-1)
    if not path.is_dir():
        raise UserError(f"Vosk model folder {path} does not exist; run 'voice-skill model download' or pass --model with a model folder")
    if not (path / "am").is_dir() and not (path / "final.mdl").exists():
        raise UserError(f"{path} is not a Vosk model folder (no am/ inside); unzip a model from the Vosk model list into models/")
    from voice_skill.native_stderr import quiet_native_stderr

    try:
        # Kaldi writes its own lines to fd 2 ("ERROR (VoskAPI:Read() ...) Failed to read matrix
        # from stream."): the line below says it all, -v logs them.
        with quiet_native_stderr(kaldi_line, "Vosk"):
            return vosk.Model(str(path))
    except Exception:
        raise UserError(f"Vosk could not load the model in {path}; it is damaged or incomplete: download it again") from None


def model_words(model, words: set[str]) -> set[str]:
    """The subset of words that the model's vocabulary contains."""
    return {w for w in words if model.vosk_model_find_word(w) != -1}


class VoskRecognizer:
    name = "vosk"

    def __init__(self, model, phrases: list[str], decoys: list[str] = (), min_confidence: float = DEFAULT_MIN_CONFIDENCE):
        import vosk

        self._triggers = set(phrases)
        self._trigger_lengths = {len(p.split()) for p in phrases}
        vocabulary = model_words(model, {w for p in list(phrases) + list(decoys) for w in p.split()} | {"[unk]"})
        for phrase in dict.fromkeys(phrases):  # in the file's order: the same line every run
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

    def _find_trigger(self, words: list[dict], final: bool) -> Heard | None:
        """The first trigger phrase spoken as consecutive words, with their confidences.

        A Vosk grammar lets phrases and their words follow each other, so a result may hold a
        trigger next to other grammar words (an echoed last word, say). The trigger's own words
        must all be confident and little else may have been said in the same result; [unk]
        (speech outside the grammar) around the trigger is allowed, as a person may say
        "okay, ask us a question".
        """
        tokens = [w.get("word", "") for w in words if w.get("word") != "[unk]"]
        words = [w for w in words if w.get("word") != "[unk]"]
        for length in sorted(self._trigger_lengths, reverse=True):
            if len(tokens) - length > MAX_EXTRA_WORDS:
                continue  # a sentence that merely contains the phrase words is not a command
            for i in range(len(tokens) - length + 1):
                text = " ".join(tokens[i : i + length])
                if text not in self._triggers:
                    continue
                span = words[i : i + length]
                confidences = tuple((w.get("word", ""), float(w.get("conf", 0.0))) for w in span)
                confidence = min(c for _, c in confidences)
                if confidence < self._min_confidence:
                    log.debug("%s result rejected: confidence %.2f", "final" if final else "partial", confidence)
                    continue
                end = span[-1].get("end") if final else None
                return Heard(text, self._utterance, self._now(), confidence, final, span[0].get("start"), end, confidences)
        return None

    def _partial(self, result: dict) -> list[Heard]:
        heard = self._find_trigger(result.get("partial_result", []), final=False)
        return [heard] if heard else []

    def _final(self, result: dict) -> list[Heard]:
        words = result.get("result", [])
        heard = self._find_trigger(words, final=True)
        if heard is None and words:
            # Not a trigger: report what was heard (a decoy, [unk], other words) for debugging.
            conf = min(float(w.get("conf", 0.0)) for w in words)
            heard = Heard(result.get("text", ""), self._utterance, self._now(), conf, True, words[0].get("start"), words[-1].get("end"))
        self._utterance += 1
        return [heard] if heard else []

    def finish(self) -> list[Heard]:
        return self._final(json.loads(self._recognizer.FinalResult()))

    def reset(self) -> None:
        self._recognizer.Reset()
        self._utterance += 1
