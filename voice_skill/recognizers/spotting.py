"""Spotting: find a candidate phrase where an utterance ends, even after other speech.

The spotter follows each utterance as it is spoken with a grammar of

    whole-utterance commands ("another one", "speak softer")
  | [other speech] (a wake phrase | a decoy)

where "other speech" is a coarse loop of six phones and the model's speech-noise filler: it
is too crude to fit a wake phrase as well as the phrase's own words do, yet good enough to
take whatever was said before the phrase ("okay, we're in bed now, ask us a question").

The phone loop has a cost: on some voices its partial paths crowd the phrase's own out of
the search beam, and the search ends inside the loop. So when it reaches no phrase and the
utterance is short enough to be a phrase by itself, the utterance is decoded once more
with the plain grammar (no loop), which is what a phrase said on its own needs.

What it hands on is a Candidate: the phrase that ends the utterance, where it starts and
ends, and whether other speech came before it. A decoy ending the utterance is a candidate
too: the engine logs it and stops there.
"""

from __future__ import annotations

from dataclasses import dataclass

from voice_skill.recognizers.base import SAMPLE_RATE
from voice_skill.recognizers.sphinx import FILLER_PREFIX, Grammar, SphinxDecoder, base_word, is_filler

SEARCH = "spot"
WHOLE_SEARCH = "spot-whole"
FRAME_SECONDS = 0.01  # PocketSphinx's frame rate
RESTART_SECONDS = 12.0  # longer speech is decoded afresh from its last REFEED_SECONDS
REFEED_SECONDS = 3.0


@dataclass(frozen=True)
class Candidate:
    text: str  # the phrase the utterance ends with
    start: float  # stream seconds
    end: float
    after_speech: bool  # other speech came before it in the same utterance
    hypothesis: str  # the decoder's whole hypothesis (fillers included), for -v logs


class PhoneticSpotter:
    def __init__(self, decoder: SphinxDecoder, grammar: Grammar, max_phrase_seconds: float):
        self._decoder = decoder
        decoder.add_grammar(SEARCH, grammar)
        decoder.add_grammar(WHOLE_SEARCH, Grammar(whole=tuple(grammar.whole) + tuple(grammar.ending), filler=False))
        self._max_phrase_bytes = int(max_phrase_seconds * SAMPLE_RATE) * 2
        self._phrases = set(grammar.whole) | set(grammar.ending)
        self._started_at = 0.0  # stream seconds of the first byte given to the decoder
        self._bytes = 0
        self._audio = bytearray()  # the last REFEED_SECONDS of the utterance
        self.active = False
        self.last_hypothesis = ""  # what the search heard last (fillers included), for -v logs

    def start(self, at: float, preroll: bytes = b"") -> None:
        self._decoder.start(SEARCH)
        self.active = True
        self._started_at = at - len(preroll) / 2 / SAMPLE_RATE
        self._bytes = 0
        self._audio.clear()
        if preroll:
            self.process(preroll)

    def process(self, speech: bytes) -> None:
        if not self.active:
            return
        self._decoder.process(speech)
        self._bytes += len(speech)
        self._audio += speech
        keep = int(REFEED_SECONDS * SAMPLE_RATE) * 2
        if len(self._audio) > keep:
            del self._audio[: len(self._audio) - keep]
        if self._bytes > RESTART_SECONDS * SAMPLE_RATE * 2:
            # A long stretch of speech: start afresh from its last seconds, so that memory and
            # search stay small and a phrase at the end is still heard whole.
            end = self._started_at + self._bytes / 2 / SAMPLE_RATE
            recent = bytes(self._audio)
            self._decoder.end()
            self.active = False
            self.start(end, recent)

    def end(self) -> Candidate | None:
        """The utterance is over: the phrase it ends with, if the search reached one."""
        if not self.active:
            return None
        self.active = False
        hypothesis, segments = self._decoder.end()
        self.last_hypothesis = hypothesis
        found = self._candidate(hypothesis, segments, self._started_at)
        if found is None and self._bytes <= self._max_phrase_bytes and self._audio:
            started_at = self._started_at + (self._bytes - len(self._audio)) / 2 / SAMPLE_RATE
            hypothesis, segments = self._decoder.decode(WHOLE_SEARCH, bytes(self._audio))
            self.last_hypothesis = hypothesis or self.last_hypothesis
            found = self._candidate(hypothesis, segments, started_at)
        return found

    def _candidate(self, hypothesis: str, segments, started_at: float) -> Candidate | None:
        words = [(base_word(s.word), s.start_frame, s.end_frame) for s in segments if not is_filler(s.word)]
        text = " ".join(w for w, _, _ in words)
        if text not in self._phrases or not words:
            return None
        after_speech = any(s.word.startswith(FILLER_PREFIX) for s in segments)
        start = started_at + words[0][1] * FRAME_SECONDS
        end = started_at + (words[-1][2] + 1) * FRAME_SECONDS
        return Candidate(text, start, end, after_speech, hypothesis)

    def cancel(self) -> None:
        """Forget the current utterance (the skill's own voice)."""
        if self.active:
            self._decoder.end()
            self.active = False
