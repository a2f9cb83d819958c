"""PocketSphinx with its bundled English model: the zero-download engine.

How a phrase is spotted:
1. WebRTC noise suppression cleans the signal (steady fan and room noise), 10 ms at a time,
   whenever the background is noisy.
2. Voice activity detection (PocketSphinx's endpointer) cuts the stream into utterances;
   silence is never decoded, so a quiet night costs almost nothing.
3. Each utterance is decoded with a grammar holding the trigger phrases and the decoys
   (sentences that sound like triggers): a near miss lands on its decoy, not on a trigger.
4. A grammar decoder always answers with some phrase, so a trigger is only accepted when its
   words fit the audio well: the acoustic score of the trigger words, per frame, relative to
   the best-scoring sounds of each frame (PocketSphinx normalises scores that way), must be
   above a threshold. Other speech forced onto a trigger by the grammar scores far lower.
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
DEFAULT_MIN_FRAME_SCORE = -3.3  # mean log acoustic score per frame of the trigger words
NOISE_SUPPRESSION_LEVEL = 4  # webrtc-noise-gain: 0 (off) .. 4 (strongest)
NOISY_FLOOR_DBFS = -50.0  # background level above which the suppressed signal is used
NOISY_HYSTERESIS_DB = 6.0  # ... and below which (minus this) it is no longer used
ENDPOINT_WINDOW = 0.3  # seconds of non-speech that end an utterance
MIN_PHONES_PER_SECOND = 5.5  # a trigger stretched over a long sentence is not a trigger
PREROLL_BYTES = int(0.25 * SAMPLE_RATE) * 2
FRAME_10MS = SAMPLE_RATE // 100 * 2  # bytes


def _model_paths() -> tuple[str, str]:
    from pocketsphinx import get_model_path

    base = os.path.join(get_model_path(), "en-us")
    return os.path.join(base, "en-us"), os.path.join(base, "cmudict-en-us.dict")


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
        min_frame_score: float = DEFAULT_MIN_FRAME_SCORE,
        noise_suppression: int = NOISE_SUPPRESSION_LEVEL,
    ):
        from pocketsphinx import Decoder, Endpointer, Vad

        hmm, dictionary = _model_paths()
        self._grammar = Decoder(hmm=hmm, dict=dictionary, loglevel="FATAL", beam=1e-80, pbeam=1e-80, wbeam=1e-60)
        self._triggers = set(phrases)
        pronounce = self._grammar.lookup_word  # the decoder's own dictionary: None for unknown words
        for phrase in self._triggers:
            missing = [w for w in phrase.split() if pronounce(w) is None]
            if missing:
                raise UserError(f"trigger phrase {phrase!r}: word(s) {', '.join(missing)} are not in the PocketSphinx dictionary; choose other words")
        self._phone_counts = {p: sum(len(pronounce(w).split()) for w in p.split()) for p in self._triggers}
        usable_decoys = [d for d in decoys if all(pronounce(w) is not None for w in d.split())]
        self._phrases = set(self._triggers) | set(usable_decoys)
        self._grammar.add_jsgf_string("commands", _jsgf(sorted(self._triggers) + usable_decoys))
        self._grammar.activate_search("commands")
        self._min_frame_score = min_frame_score
        self._denoiser = None
        if noise_suppression:
            from webrtc_noise_gain import AudioProcessor

            self._denoiser = AudioProcessor(0, noise_suppression)
        self._endpointer = Endpointer(window=ENDPOINT_WINDOW, ratio=0.9, vad_mode=Vad.MEDIUM_LOOSE, sample_rate=SAMPLE_RATE)
        self._frame_bytes = self._endpointer.frame_bytes
        self._recent: deque[tuple[float, bytes]] = deque(maxlen=int((ENDPOINT_WINDOW + 0.3) / self._endpointer.frame_length) + 2)
        self._audio = bytearray()  # the current utterance, for a second decode
        self._preroll = b""  # the frames just before it
        self._raw = bytearray()  # waiting for a whole 10 ms block
        self._levels: deque[float] = deque(maxlen=1000)  # 10 s of 10 ms frame levels
        self._suppressing = False
        self._pending = bytearray()  # waiting for a whole endpointer frame
        self._in_utterance = False
        self._ignored = False
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
        self._ignored = False
        self._utterance += 1
        self._speech_bytes = 0
        self._audio.clear()
        self._grammar.start_utt()

    def _add_speech(self, speech: bytes) -> None:
        if not self._ignored:
            self._speech_bytes += len(speech)
            self._audio += speech
            self._grammar.process_raw(speech, no_search=False, full_utt=False)

    def _complete(self) -> tuple[str, float] | None:
        """The decoded phrase and its frame score, if the search reached the end of a phrase."""
        hyp = self._grammar.hyp()
        if hyp is None or not hyp.hypstr or hyp.hypstr not in self._phrases:
            return None
        return hyp.hypstr, frame_score(self._grammar.seg())

    def _end_utterance(self, speech_end: float, tail: bytes = b"") -> list[Heard]:
        self._in_utterance = False
        if self._ignored:
            return []
        self._grammar.end_utt()
        duration = self._speech_bytes / 2 / SAMPLE_RATE
        if duration < MIN_UTTERANCE_SECONDS:
            log.debug("utterance of %.2f s ending at %.2f s: too short", duration, speech_end)
            return []
        found = self._complete()
        if found is None and tail:
            # The endpointer often calls a soft first or last sound ("tip", "that") silence:
            # the search then ends inside the phrase. Decode once more with the frames just
            # before and after the utterance.
            self._grammar.start_utt()
            self._grammar.process_raw(self._preroll + bytes(self._audio) + tail, no_search=False, full_utt=True)
            self._grammar.end_utt()
            found = self._complete()
        if found is None:
            log.debug("utterance of %.2f s ending at %.2f s: no phrase", duration, speech_end)
            return []
        text, score = found
        confidence = max(0.0, min(1.0, 1.0 + score / 6.0))
        if text in self._triggers:
            rate = self._phone_counts[text] / duration
            log.debug("candidate %r: frame score %.2f, %.1f phones/s", text, score, rate)
            if score < self._min_frame_score or rate < MIN_PHONES_PER_SECOND:
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
        if self._in_utterance and not self._ignored:
            self._grammar.end_utt()
            self._grammar.start_utt()
        self._speech_bytes = 0
        self._audio.clear()
