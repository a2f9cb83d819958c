"""PocketSphinx with its bundled English model: the zero-download engine.

How a phrase is spotted:
1. Voice activity detection (PocketSphinx's endpointer) cuts the stream into utterances;
   silence is never decoded, so a quiet night costs almost nothing.
2. Each utterance is decoded with a grammar holding the trigger phrases and the decoys
   (sentences that sound like triggers). A near miss lands on its decoy, not on a trigger.
3. A grammar decoder always answers with some phrase, so a candidate trigger is verified
   on the buffered audio by an open-vocabulary decode with the general English language
   model: the phones of what that heard must be close to the phones of the trigger.
   Ordinary speech forced onto a trigger by the grammar fails this check.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache

from voice_skill.errors import UserError
from voice_skill.recognizers.base import SAMPLE_RATE, Heard

log = logging.getLogger(__name__)

MAX_UTTERANCE_SECONDS = 5.0  # commands are short; longer speech is not decoded
MIN_UTTERANCE_SECONDS = 0.25
DEFAULT_MAX_PHONE_DISTANCE = 0.6  # phone edit distance / trigger phones, see verify()


def _model_paths() -> tuple[str, str, str]:
    from pocketsphinx import get_model_path

    base = os.path.join(get_model_path(), "en-us")
    return os.path.join(base, "en-us"), os.path.join(base, "cmudict-en-us.dict"), os.path.join(base, "en-us.lm.bin")


@lru_cache(maxsize=1)
def _pronunciations() -> dict[str, tuple[str, ...]]:
    _, dictionary, _ = _model_paths()
    prons: dict[str, tuple[str, ...]] = {}
    with open(dictionary, encoding="utf-8") as lines:
        for line in lines:
            word, *phones = line.split()
            if "(" not in word:
                prons[word] = tuple(phones)
    return prons


def phones_of(text: str) -> list[str]:
    prons = _pronunciations()
    return [p for w in text.split() for p in prons.get(w.split("(")[0], ())]


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        prev, row[0] = row[:], i
        for j, y in enumerate(b, start=1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (x != y))
    return row[-1]


def phone_distance(expected: str, heard: str) -> float:
    """Edit distance between the phones of two sentences, relative to the expected one."""
    want = phones_of(expected)
    return edit_distance(want, phones_of(heard)) / max(1, len(want))


def _jsgf(phrases: list[str]) -> str:
    body = " | ".join(f"( {p} )" for p in phrases)
    return f"#JSGF V1.0;\ngrammar voice_skill;\npublic <command> = {body} ;\n"


class PocketsphinxRecognizer:
    name = "pocketsphinx"

    def __init__(self, phrases: list[str], decoys: list[str] = (), max_phone_distance: float = DEFAULT_MAX_PHONE_DISTANCE):
        from pocketsphinx import Decoder, Endpointer, Vad

        hmm, dictionary, lm = _model_paths()
        self._triggers = set(phrases)
        prons = _pronunciations()
        for phrase in self._triggers:
            missing = [w for w in phrase.split() if w not in prons]
            if missing:
                raise UserError(f"trigger phrase {phrase!r}: word(s) {', '.join(missing)} are not in the PocketSphinx dictionary; choose other words")
        usable_decoys = [d for d in decoys if all(w in prons for w in d.split())]
        self._grammar = Decoder(hmm=hmm, dict=dictionary, loglevel="FATAL")
        self._grammar.add_jsgf_string("commands", _jsgf(sorted(self._triggers) + usable_decoys))
        self._grammar.activate_search("commands")
        self._verifier = Decoder(hmm=hmm, dict=dictionary, lm=lm, loglevel="FATAL")
        self._max_distance = max_phone_distance
        self._endpointer = Endpointer(window=0.3, ratio=0.9, vad_mode=Vad.STRICT, sample_rate=SAMPLE_RATE)
        self._frame_bytes = self._endpointer.frame_bytes
        self._pending = bytearray()
        self._audio = bytearray()
        self._in_utterance = False
        self._ignored = False
        self._utterance = 0
        self._samples = 0

    def _now(self) -> float:
        return self._samples / SAMPLE_RATE

    def feed(self, pcm: bytes) -> list[Heard]:
        self._pending += pcm
        results: list[Heard] = []
        size = self._frame_bytes
        while len(self._pending) >= size:
            frame = bytes(self._pending[:size])
            del self._pending[:size]
            self._samples += size // 2
            was_in_speech = self._endpointer.in_speech
            speech = self._endpointer.process(frame)
            if speech is None:
                continue
            if not was_in_speech:
                self._start_utterance()
            self._add_speech(speech)
            if not self._endpointer.in_speech:
                results.extend(self._end_utterance(self._endpointer.speech_end))
        return results

    def _start_utterance(self) -> None:
        self._in_utterance = True
        self._ignored = False
        self._utterance += 1
        self._audio.clear()
        self._grammar.start_utt()

    def _add_speech(self, speech: bytes) -> None:
        if self._ignored:
            return
        self._audio += speech
        if len(self._audio) > MAX_UTTERANCE_SECONDS * SAMPLE_RATE * 2:
            self._ignored = True
            self._grammar.end_utt()
            self._audio.clear()
            return
        self._grammar.process_raw(speech, no_search=False, full_utt=False)

    def _end_utterance(self, speech_end: float) -> list[Heard]:
        self._in_utterance = False
        if self._ignored:
            return []
        self._grammar.end_utt()
        hyp = self._grammar.hyp()
        audio = bytes(self._audio)
        self._audio.clear()
        duration = len(audio) / 2 / SAMPLE_RATE
        if hyp is None or not hyp.hypstr or duration < MIN_UTTERANCE_SECONDS:
            return []
        text = hyp.hypstr
        confidence = 1.0
        if text in self._triggers:
            heard_open = self._open_decode(audio)
            distance = phone_distance(text, heard_open)
            confidence = max(0.0, 1.0 - distance)
            if distance > self._max_distance:
                log.debug("candidate rejected by verification (distance %.2f)", distance)
                text = heard_open  # what was really said, as far as the open decoder knows
        start = speech_end - duration
        return [Heard(text, self._utterance, self._now(), confidence, True, start, speech_end)]

    def _open_decode(self, audio: bytes) -> str:
        self._verifier.start_utt()
        self._verifier.process_raw(audio, no_search=False, full_utt=True)
        self._verifier.end_utt()
        hyp = self._verifier.hyp()
        return hyp.hypstr if hyp else ""

    def finish(self) -> list[Heard]:
        results: list[Heard] = []
        if self._pending:
            pad = bytes(self._frame_bytes - len(self._pending))
            self._pending += pad
            results.extend(self.feed(b""))
        if self._in_utterance:
            tail = self._endpointer.end_stream(bytes(self._frame_bytes))
            if tail is not None:
                self._add_speech(tail)
            results.extend(self._end_utterance(self._now()))
        return results

    def reset(self) -> None:
        if self._in_utterance and not self._ignored:
            self._grammar.end_utt()
        self._ignored = True  # the rest of the current utterance, if any, is dropped
        self._audio.clear()
