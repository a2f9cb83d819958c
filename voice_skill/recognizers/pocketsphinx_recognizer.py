"""PocketSphinx with its bundled English model: the zero-download engine.

How a phrase is spotted:
1. WebRTC noise suppression cleans the signal (steady fan and room noise), 10 ms at a time,
   whenever the background is noisy.
2. Voice activity detection (PocketSphinx's endpointer, 0.2 s window) cuts the stream into
   utterances; silence is never decoded, so a quiet night costs almost nothing. Speech longer
   than the longest trigger could take is not decoded past that point.
3. Each utterance is decoded live with a grammar holding the trigger phrases and the decoys
   (sentences that sound like triggers): a near miss lands on its decoy, not on a trigger.
   In a quiet room a decoy ends the matter there.
4. Anything else is decoded again by a second decoder that builds a lattice (too costly to do
   for every utterance). A grammar decoder always answers with some phrase, so a trigger is
   only accepted when its words fit the audio well: the acoustic score of the trigger words,
   per frame, relative to the best-scoring sounds of each frame (PocketSphinx normalises
   scores that way), must be above a threshold, and the phrase must not be stretched out.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque

import numpy as np

from voice_skill.errors import UserError
from voice_skill.recognizers.base import SAMPLE_RATE, Heard

log = logging.getLogger(__name__)

MAX_UTTERANCE_SECONDS = 6.0  # longer speech is decoded in pieces of this length
MIN_UTTERANCE_SECONDS = 0.25
DEFAULT_MIN_FRAME_SCORE = -3.5  # mean log acoustic score per frame of the trigger words
NOISY_SCORE_ALLOWANCE = 0.8  # how much lower it may be while noise is being suppressed
NOISE_SUPPRESSION_LEVEL = 4  # webrtc-noise-gain: 0 (off) .. 4 (strongest)
NOISY_FLOOR_DBFS = -50.0  # background level above which the suppressed signal is used
NOISY_HYSTERESIS_DB = 6.0  # ... and below which (minus this) it is no longer used
VAD_MODE = 1  # pocketsphinx.Vad.MEDIUM_LOOSE (0 loose .. 3 strict; 0 and 2 measured no better)
ENDPOINT_WINDOW = 0.2  # seconds of non-speech that end an utterance (0.3: p90 delay 0.67 s, 0.2: 0.58 s)
MIN_PHONES_PER_SECOND = 5.5
PREROLL_BYTES = int(0.25 * SAMPLE_RATE) * 2
FRAME_10MS = SAMPLE_RATE // 100 * 2  # bytes


def _model_paths() -> tuple[str, str]:
    from pocketsphinx import get_model_path

    base = os.path.join(get_model_path(), "en-us")
    return os.path.join(base, "en-us"), os.path.join(base, "cmudict-en-us.dict")


def read_pronunciations(dictionary: str, words: set[str]) -> dict[str, list[tuple[str, str]]]:
    """The dictionary entries of these words: word -> [(entry, phones)], e.g. ("a(2)", "EY")."""
    found: dict[str, list[tuple[str, str]]] = {}
    with open(dictionary, encoding="utf-8") as lines:
        for line in lines:
            entry, _, phones = line.partition(" ")
            word = entry.split("(", 1)[0]
            if word in words:
                found.setdefault(word, []).append((entry, phones.strip()))
    return found


def _decoder(hmm: str, pronunciations: dict[str, list[tuple[str, str]]], grammar: str, bestpath: bool):
    """A decoder for the grammar. It starts with an empty dictionary and gets only the words of
    the grammar: the full 130,000-word CMU dictionary would cost about 80 MB and 0.4 s."""
    from pocketsphinx import Decoder

    decoder = Decoder(hmm=hmm, dict=os.devnull, loglevel="FATAL", beam=1e-80, pbeam=1e-80, wbeam=1e-60, bestpath=bestpath)
    entries = [entry for variants in pronunciations.values() for entry in variants]
    for i, (key, phones) in enumerate(entries):
        decoder.add_word(key, phones, i == len(entries) - 1)
    decoder.add_jsgf_string("commands", grammar)
    decoder.activate_search("commands")
    return decoder


def _jsgf(phrases: list[str]) -> str:
    body = " | ".join(f"( {p} )" for p in phrases)
    return f"#JSGF V1.0;\ngrammar voice_skill;\npublic <command> = {body} ;\n"


def frame_score(segments) -> float:
    """Mean log acoustic score per frame over the words of a hypothesis (fillers left out)."""
    total, frames = 0.0, 0
    for seg in segments or ():
        if seg.word.startswith(("<", "[")):
            continue
        total += math.log(seg.ascore) if seg.ascore > 0 else -1e4
        frames += seg.end_frame - seg.start_frame + 1
    return total / frames if frames else float("-inf")


class PocketsphinxRecognizer:
    name = "pocketsphinx"

    def __init__(
        self,
        phrases: list[str],
        decoys: list[str] = (),
        min_frame_score: float | None = None,
        noise_suppression: int = NOISE_SUPPRESSION_LEVEL,
    ):
        from pocketsphinx import Endpointer, Vad

        hmm, dictionary = _model_paths()
        self._triggers = set(phrases)
        pronunciations = read_pronunciations(dictionary, {w for p in list(phrases) + list(decoys) for w in p.split()})
        for phrase in self._triggers:
            missing = [w for w in phrase.split() if w not in pronunciations]
            if missing:
                raise UserError(f"trigger phrase {phrase!r}: word(s) {', '.join(missing)} are not in the PocketSphinx dictionary; choose other words")
        self._phone_counts = {p: sum(len(pronunciations[w][0][1].split()) for w in p.split()) for p in self._triggers}
        # Speech longer than this can never be accepted (too few phones per second for any
        # trigger), so it is not decoded past this point: long television sentences cost little.
        self._max_speech_bytes = int((max(self._phone_counts.values()) / MIN_PHONES_PER_SECOND + 0.1) * SAMPLE_RATE) * 2
        usable_decoys = [d for d in decoys if all(w in pronunciations for w in d.split())]
        self._phrases = set(self._triggers) | set(usable_decoys)
        grammar = _jsgf(sorted(self._triggers) + usable_decoys)
        # Two decoders over the same grammar. The live one follows the speech as it comes and
        # only says which phrase it was; the scorer decodes a candidate trigger again, with a
        # lattice, for the per-word acoustic scores the acceptance test needs. A lattice for
        # every utterance would cost up to 1 s of CPU per utterance (espeak-ng speech).
        self._grammar = _decoder(hmm, pronunciations, grammar, bestpath=False)
        self._scorer = _decoder(hmm, pronunciations, grammar, bestpath=True)
        self._min_frame_score = DEFAULT_MIN_FRAME_SCORE if min_frame_score is None else min_frame_score
        self._denoiser = None
        if noise_suppression:
            from webrtc_noise_gain import AudioProcessor

            self._denoiser = AudioProcessor(0, noise_suppression)
        self._endpointer = Endpointer(window=ENDPOINT_WINDOW, ratio=0.9, vad_mode=VAD_MODE, sample_rate=SAMPLE_RATE)
        self._frame_bytes = self._endpointer.frame_bytes
        self._recent: deque[tuple[float, bytes]] = deque(maxlen=int((ENDPOINT_WINDOW + 0.3) / self._endpointer.frame_length) + 2)
        self._audio = bytearray()  # the current utterance, for a second decode
        self._preroll = b""  # the frames just before it
        self._raw = bytearray()  # waiting for a whole 10 ms block
        self._levels: deque[float] = deque(maxlen=1000)  # 10 s of 10 ms frame levels
        self._suppressing = False
        self._pending = bytearray()  # waiting for a whole endpointer frame
        self._in_utterance = False
        self._speech_bytes = 0
        self._utterance = 0
        self._samples = 0

    def _now(self) -> float:
        return self._samples / SAMPLE_RATE

    def _clean(self, pcm: bytes) -> bytes:
        """Noise suppression, only where there is noise to suppress.

        WebRTC's suppressor runs on every 10 ms (so its noise estimate stays current), but its
        output is used only while the background (the quietest 10 ms of the last 10 s) is above
        NOISY_FLOOR_DBFS: on clean or quietly noisy input it blurs soft word endings ("repeat
        that", "give us a tip" heard as "give him a tip" with a fan 26 dB below the voice).
        """
        if self._denoiser is None:
            return pcm
        self._raw += pcm
        usable = len(self._raw) - len(self._raw) % FRAME_10MS
        out = bytearray()
        for i in range(0, usable, FRAME_10MS):
            frame = bytes(self._raw[i : i + FRAME_10MS])
            cleaned = self._denoiser.Process10ms(frame).audio
            samples = np.frombuffer(frame, dtype=np.int16).astype(np.float32)
            self._levels.append(float(np.sqrt(np.mean(samples * samples))) / 32768 + 1e-9)
            if len(self._levels) % 10 == 0 and not self._endpointer.in_speech:
                # Decided between utterances only, with some hysteresis: never mid-phrase.
                floor = 20 * math.log10(min(self._levels))
                if floor > NOISY_FLOOR_DBFS:
                    self._suppressing = True
                elif floor < NOISY_FLOOR_DBFS - NOISY_HYSTERESIS_DB:
                    self._suppressing = False
            out += cleaned if self._suppressing else frame
        del self._raw[:usable]
        return bytes(out)

    def feed(self, pcm: bytes) -> list[Heard]:
        self._pending += self._clean(pcm)
        results: list[Heard] = []
        size = self._frame_bytes
        while len(self._pending) >= size:
            frame = bytes(self._pending[:size])
            del self._pending[:size]
            self._samples += size // 2
            self._recent.append((self._now() - self._endpointer.frame_length, frame))
            was_in_speech = self._endpointer.in_speech
            speech = self._endpointer.process(frame)
            if speech is None:
                continue
            if not was_in_speech:
                self._start_utterance()
                start = self._endpointer.speech_start
                self._preroll = b"".join(f for t, f in self._recent if t < start - 1e-6)[-PREROLL_BYTES:]
            self._add_speech(speech)
            if not self._endpointer.in_speech:
                end = self._endpointer.speech_end
                tail = b"".join(f for start, f in self._recent if start >= end - 1e-6)
                results.extend(self._end_utterance(end, tail))
            elif self._speech_bytes > MAX_UTTERANCE_SECONDS * SAMPLE_RATE * 2:
                results.extend(self._end_utterance(self._now()))  # a long stretch: decode it in pieces
                self._start_utterance()
        return results

    def _start_utterance(self) -> None:
        self._in_utterance = True
        self._utterance += 1
        self._speech_bytes = 0
        self._audio.clear()
        self._grammar.start_utt()

    def _add_speech(self, speech: bytes) -> None:
        self._speech_bytes += len(speech)
        if self._speech_bytes > self._max_speech_bytes:
            return  # too long for any trigger: counted, no longer decoded
        self._audio += speech
        self._grammar.process_raw(speech, no_search=False, full_utt=False)

    def _score(self, pcm: bytes, full_utt: bool = False) -> tuple[str, float] | None:
        """The scorer's phrase for this audio and its frame score, if its search reached the
        end of a phrase."""
        self._scorer.start_utt()
        self._scorer.process_raw(pcm, no_search=False, full_utt=full_utt)
        self._scorer.end_utt()
        hyp = self._scorer.hyp()
        if hyp is None or not hyp.hypstr or hyp.hypstr not in self._phrases:
            return None
        return hyp.hypstr, frame_score(self._scorer.seg())

    def _end_utterance(self, speech_end: float, tail: bytes = b"") -> list[Heard]:
        self._in_utterance = False
        self._grammar.end_utt()
        duration = self._speech_bytes / 2 / SAMPLE_RATE
        if duration < MIN_UTTERANCE_SECONDS or self._speech_bytes > self._max_speech_bytes:
            log.debug("utterance of %.2f s ending at %.2f s: too short or too long for a phrase", duration, speech_end)
            return []
        hyp = self._grammar.hyp()
        heard = hyp.hypstr if hyp is not None else ""
        if heard in self._phrases and heard not in self._triggers and not self._suppressing:
            log.debug("utterance of %.2f s ending at %.2f s: a decoy", duration, speech_end)
            return [Heard(heard, self._utterance, self._now(), 0.0, True, speech_end - duration, speech_end)]
        # In noise the live search lands on a decoy too easily: the lattice decides there.
        found = self._score(bytes(self._audio))
        if found is None and tail:
            # The endpointer often calls a soft first or last sound ("tip", "that") silence:
            # the search then ends inside the phrase. Decode once more with the frames just
            # before and after the utterance.
            found = self._score(self._preroll + bytes(self._audio) + tail, full_utt=True)
        if found is None:
            log.debug("utterance of %.2f s ending at %.2f s: no phrase", duration, speech_end)
            return []
        text, score = found
        confidence = max(0.0, min(1.0, 1.0 + score / 6.0))
        if text in self._triggers:
            rate = self._phone_counts[text] / duration
            log.debug("candidate %r: frame score %.2f, %.1f phones/s", text, score, rate)
            threshold = self._min_frame_score - (NOISY_SCORE_ALLOWANCE if self._suppressing else 0.0)
            if score < threshold or rate < MIN_PHONES_PER_SECOND:
                text = ""
        return [Heard(text, self._utterance, self._now(), confidence, True, speech_end - duration, speech_end)]

    def finish(self) -> list[Heard]:
        results: list[Heard] = []
        if self._pending:
            self._pending += bytes(self._frame_bytes - len(self._pending))
            results.extend(self.feed(b""))
        if self._in_utterance:
            tail = self._endpointer.end_stream(bytes(self._frame_bytes))
            if tail is not None:
                self._add_speech(tail)
            results.extend(self._end_utterance(self._now()))
        return results

    def reset(self) -> None:
        """Forget what was heard so far (the skill's own voice): decoding restarts from here."""
        if self._in_utterance:
            self._grammar.end_utt()
            self._grammar.start_utt()
        self._speech_bytes = 0
        self._audio.clear()
