"""The capture front end: noise suppression where there is noise, and voice activity.

It turns a stream of 16 kHz PCM into speech frames grouped into utterances, and keeps the
last few seconds of (cleaned) audio so later stages can look back at a candidate:

- WebRTC noise suppression runs only while the background is noisy (the quietest 10 ms of
  the last 10 s above NOISY_FLOOR_DBFS, decided between utterances, with hysteresis). On clean
  or quietly noisy input it blurs soft word endings, and on a quiet night it would cost CPU
  for nothing. It is started a little before its output is used (WARMUP) so that its noise
  estimate is ready.
- Voice activity (PocketSphinx's endpointer, WebRTC VAD inside) cuts the stream into
  utterances; silence goes no further, so a quiet night costs almost nothing.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from voice_skill.recognizers.base import SAMPLE_RATE

NOISE_SUPPRESSION_LEVEL = 4  # webrtc-noise-gain: 0 (off) .. 4 (strongest)
NOISY_FLOOR_DBFS = -50.0  # background level above which the suppressed signal is used
NOISY_HYSTERESIS_DB = 6.0  # ... and below which (minus this) it is no longer used
WARMUP_FLOOR_DBFS = NOISY_FLOOR_DBFS - 3.0  # the last second's floor above this starts the suppressor
VAD_MODE = 1  # pocketsphinx.Vad.MEDIUM_LOOSE (0 loose .. 3 strict; 0 and 2 measured no better)
ENDPOINT_WINDOW = 0.2  # seconds of non-speech that end an utterance
HISTORY_SECONDS = 4.0  # cleaned audio kept for looking back at a candidate
RAW_KEEP_BYTES = int((HISTORY_SECONDS + 1.0) * SAMPLE_RATE) * 2  # audio as it came in, for the judge
FRAME_10MS = SAMPLE_RATE // 100 * 2  # bytes
LEVEL_HISTORY = 1000  # 10 s of 10 ms frame levels: the background floor is their minimum
RECENT_LEVELS = 100  # the last second's floor starts the suppressor early
DECIDE_EVERY = 10  # frames (100 ms) between decisions
DITHER = np.tile(np.array([1, -1], dtype=np.int16), 4096)  # +-1 LSB, for digital silence


def _dithered(frame: bytes) -> bytes:
    """Digital silence (zeros or +-1, as from a file or a muted source) with an inaudible
    +-1 LSB pattern added: the voice activity detector can hold all-zero frames for speech
    for seconds (measured: 2.2 s after a phrase), which delays the end of the utterance."""
    samples = np.frombuffer(frame, dtype=np.int16)
    if np.abs(samples).max(initial=0) > 1:
        return frame
    return DITHER[: len(samples)].tobytes()


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # stream seconds where the speech starts
    preroll: bytes  # the audio just before it (up to 0.25 s)


@dataclass(frozen=True)
class Speech:
    pcm: bytes  # speech frames, in order


@dataclass(frozen=True)
class SpeechEnded:
    at: float  # stream seconds where the speech ends
    tail: bytes  # the audio just after it (the endpointer's window)


FrontEndEvent = SpeechStarted | Speech | SpeechEnded


class FrontEnd:
    def __init__(self, noise_suppression: int = NOISE_SUPPRESSION_LEVEL, keep_raw: bool = False):
        from pocketsphinx import Endpointer

        self._denoiser = None
        if noise_suppression:
            from webrtc_noise_gain import AudioProcessor

            self._denoiser = AudioProcessor(0, noise_suppression)
        self._endpointer = Endpointer(window=ENDPOINT_WINDOW, ratio=0.9, vad_mode=VAD_MODE, sample_rate=SAMPLE_RATE)
        self.frame_bytes = self._endpointer.frame_bytes
        frame_seconds = self._endpointer.frame_length
        self._recent: deque[tuple[float, bytes]] = deque(maxlen=int((ENDPOINT_WINDOW + 0.3) / frame_seconds) + 2)
        self._history: deque[bytes] = deque(maxlen=int(HISTORY_SECONDS / frame_seconds))
        self._raw = bytearray()  # waiting for a whole 10 ms block
        self._keep_raw = keep_raw  # keep raw_history (only the judge asks for it)
        self._raw_history = bytearray()  # the last RAW_KEEP_BYTES of audio as it came in
        self._pending = bytearray()  # waiting for a whole endpointer frame
        self._levels = np.zeros(LEVEL_HISTORY, dtype=np.float32)  # 10 ms frame levels (dBFS), a ring
        self._level_count = 0
        self._running = False  # the suppressor is being fed
        self.suppressing = False  # its output is being used
        self.samples = 0

    @property
    def now(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def in_speech(self) -> bool:
        return self._endpointer.in_speech

    def history(self, seconds: float) -> bytes:
        """The last `seconds` of audio that went through the front end (cleaned if noisy)."""
        frames = list(self._history)
        keep = int(seconds * SAMPLE_RATE) * 2
        return b"".join(frames)[-keep:]

    def raw_history(self, seconds: float) -> bytes:
        """The same stretch of audio as history(seconds), as it came in (never cleaned; kept
        only by a front end made with keep_raw)."""
        lag = len(self._raw) + len(self._pending)  # bytes fed but not yet through the front end
        end = len(self._raw_history) - lag
        keep = min(int(seconds * SAMPLE_RATE) * 2, end)
        return bytes(self._raw_history[end - keep : end]) if keep > 0 else b""

    def _decide_suppression(self) -> None:
        filled = min(self._level_count, LEVEL_HISTORY)
        floor = float(self._levels[:filled].min())
        last = (self._level_count - 1 - np.arange(min(filled, RECENT_LEVELS))) % LEVEL_HISTORY
        recent = float(self._levels[last].min())
        if floor > NOISY_FLOOR_DBFS:
            self.suppressing = True
        elif floor < NOISY_FLOOR_DBFS - NOISY_HYSTERESIS_DB:
            self.suppressing = False
        self._running = self.suppressing or recent > WARMUP_FLOOR_DBFS

    def _clean(self, pcm: bytes) -> bytes:
        if self._denoiser is None:
            return pcm
        self._raw += pcm
        usable = len(self._raw) - len(self._raw) % FRAME_10MS
        if not usable:
            return b""
        chunk = bytes(self._raw[:usable])
        del self._raw[:usable]
        block = np.frombuffer(chunk, dtype=np.int16).reshape(-1, FRAME_10MS // 2).astype(np.float32)
        levels = 20 * np.log10(np.sqrt(np.mean(block * block, axis=1)) / 32768 + 1e-9)
        out = bytearray()
        for k, level in enumerate(levels):
            self._levels[self._level_count % LEVEL_HISTORY] = level
            self._level_count += 1
            if self._level_count % DECIDE_EVERY == 0 and not self._endpointer.in_speech:
                self._decide_suppression()  # between utterances only: never mid-phrase
            frame = chunk[k * FRAME_10MS : (k + 1) * FRAME_10MS]
            if self._running:  # fed while warming up, used while suppressing
                cleaned = self._denoiser.Process10ms(frame).audio
                out += cleaned if self.suppressing else frame
            else:
                out += frame
        return bytes(out)

    def feed(self, pcm: bytes) -> list[FrontEndEvent]:
        if self._keep_raw:
            self._raw_history += pcm
            if len(self._raw_history) > RAW_KEEP_BYTES:
                del self._raw_history[: len(self._raw_history) - RAW_KEEP_BYTES]
        self._pending += self._clean(pcm)
        events: list[FrontEndEvent] = []
        size = self.frame_bytes
        while len(self._pending) >= size:
            frame = bytes(self._pending[:size])
            del self._pending[:size]
            events.extend(self._frame(frame))
        return events

    def _frame(self, frame: bytes) -> list[FrontEndEvent]:
        self.samples += len(frame) // 2
        frame_start = self.now - self._endpointer.frame_length
        self._recent.append((frame_start, frame))
        self._history.append(frame)
        was_in_speech = self._endpointer.in_speech
        speech = self._endpointer.process(_dithered(frame))
        if speech is None:
            return []
        events: list[FrontEndEvent] = []
        if not was_in_speech:
            start = self._endpointer.speech_start
            preroll = b"".join(f for t, f in self._recent if t < start - 1e-6)[-int(0.25 * SAMPLE_RATE) * 2 :]
            events.append(SpeechStarted(start, preroll))
        events.append(Speech(speech))
        if not self._endpointer.in_speech:
            end = self._endpointer.speech_end
            tail = b"".join(f for t, f in self._recent if t >= end - 1e-6)
            events.append(SpeechEnded(end, tail))
        return events

    def finish(self) -> list[FrontEndEvent]:
        """End of stream: pad the last frame; close an open utterance."""
        events: list[FrontEndEvent] = []
        if self._pending:
            self._pending += bytes(self.frame_bytes - len(self._pending))
            events.extend(self.feed(b""))
        if self._endpointer.in_speech:
            tail = self._endpointer.end_stream(bytes(self.frame_bytes))
            if tail is not None:
                events.append(Speech(tail))
            events.append(SpeechEnded(self.now, b""))
        return events
