"""Echo cancellation of the skill's own voice, at the audio edge (issue 13).

The runner knows every sample the speaker plays. `PlaybackReference` keeps them (at 16 kHz, in
memory, the last few seconds only) on the monotonic clock at which they are expected to leave
the speaker; `EchoCanceller` takes each microphone chunk, stamped with its capture time, feeds
the reference for that time to WebRTC's echo canceller (AEC3, in livekit's
AudioProcessingModule) and returns the chunk with the echo removed.

The reference is fed REFERENCE_LEAD ahead of the capture time, so that timing errors (PortAudio's
latency figures are estimates) leave the echo after its reference, where AEC3's own delay
estimator finds it; an echo before its reference cannot be cancelled.

Measured (bench/barge_in.py, closing note of issue 13): offline, AEC3 removes 55-70 dB of echo
on a digital loopback and 18-40 dB through a reverberant, band-limited echo path, but it also
suppresses the start of a word said over the answer (the first 100-180 ms of "stop" by 30-55
dB), which is enough for the wake engine to reject it. Live in the virtual room it removed only
2-17 dB per answer: every answer opens a new output stream whose delay differs (72-172 ms after
the reference as fed), and AEC3 has to find it again each time. So echo cancellation is off
unless [audio] echo_cancellation = true.

Nothing here writes audio anywhere; nothing opens a network connection (livekit's audio
processing runs in its local FFI library).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from voice_skill.audio import to_int16_mono
from voice_skill.recognizers.base import SAMPLE_RATE as RATE

log = logging.getLogger(__name__)

FRAME = RATE // 100  # AEC3 works on 10 ms frames
REFERENCE_LEAD = 0.25  # seconds: the reference is fed this far ahead of the capture time (measured in the
# virtual room: with PortAudio's latency figures the echo came 0.14-0.19 s before the reference as stamped)
HISTORY_SECONDS = 5.0  # reference kept after it has played
ECHO_TAIL = 0.6  # seconds after the reference falls silent in which the canceller still runs


@dataclass(frozen=True)
class Segment:
    starts: float  # time.monotonic() at which samples[0] leaves the speaker
    samples: np.ndarray  # int16, 16 kHz mono

    @property
    def ends(self) -> float:
        return self.starts + len(self.samples) / RATE


class PlaybackReference:
    """What the speaker plays, on the monotonic clock; written by the speaker's thread, read
    by the capture path. Only the last HISTORY_SECONDS are kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segments: list[Segment] = []

    def playing(self, samples: np.ndarray, rate: int, starts: float) -> Segment:
        """A sound starts leaving the speaker at `starts` (monotonic seconds)."""
        import soxr

        pcm = samples.astype(np.float32) / 32768.0
        if rate != RATE:
            pcm = soxr.resample(pcm, rate, RATE)
        segment = Segment(starts, to_int16_mono(pcm))
        with self._lock:
            now = time.monotonic()
            self._segments = [s for s in self._segments if s.ends > now - HISTORY_SECONDS] + [segment]
        return segment

    def cut(self, segment: Segment, at: float) -> None:
        """The sound was stopped: nothing of it leaves the speaker after `at`."""
        keep = max(0, int((at - segment.starts) * RATE))
        with self._lock:
            self._segments = [replace(s, samples=s.samples[:keep]) if s is segment else s for s in self._segments]

    def samples(self, starts: float, count: int) -> np.ndarray:
        """The reference from `starts` (monotonic seconds) on, `count` samples (zeros where nothing plays)."""
        out = np.zeros(count, dtype=np.int16)
        with self._lock:
            segments = list(self._segments)
        for segment in segments:
            offset = int(round((segment.starts - starts) * RATE))  # where the segment begins in `out`
            first = max(0, -offset)
            last = min(len(segment.samples), count - offset)
            if last > first:
                out[offset + first : offset + last] += segment.samples[first:last]
        return out

    def active_within(self, starts: float, ends: float) -> bool:
        with self._lock:
            return any(s.starts < ends and s.ends > starts for s in self._segments)


class EchoUnavailable(Exception):
    """The echo canceller cannot run on this machine."""


class EchoCanceller:
    """WebRTC AEC3 over the microphone chunks, with the speaker's reference.

    process() takes and returns 16 kHz int16 PCM. Chunks with no capture time (file input), and
    chunks with no reference in or just before them, pass unchanged."""

    def __init__(self, reference: PlaybackReference, lead: float = REFERENCE_LEAD):
        try:
            from livekit import rtc
        except ImportError as exc:
            raise EchoUnavailable(f"the livekit package is not installed ({exc})") from None
        except OSError as exc:  # its native library does not load here
            raise EchoUnavailable(f"livekit's audio library does not load here ({exc})") from None
        self._rtc = rtc
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=False, high_pass_filter=False, auto_gain_control=False)
        self.reference = reference
        self.lead = lead
        self.frames = 0  # 10 ms frames processed
        self.delays: list[float] = []  # measured: seconds from a reference sample (as fed) to its echo
        self._probe: list[tuple[np.ndarray, np.ndarray]] | None = []  # the first second of each answer, to measure the delay
        self.seconds_spent = 0.0  # CPU (process time) spent in process()
        self._active = False
        self._energy = [0.0, 0.0]  # microphone in, echo-cancelled out, over the current stretch of playback

    def process(self, pcm: bytes, captured: float | None) -> bytes:
        """Echo-cancelled PCM for one chunk captured from `captured` (monotonic seconds of its
        first sample). Returns as many bytes as it was given (samples short of a whole 10 ms
        frame at the chunk's end, after resampling from an odd capture rate, pass unchanged)."""
        if captured is None:
            return pcm
        n = len(pcm) // 2
        window = (captured - ECHO_TAIL, captured + n / RATE + self.lead)
        active = self.reference.active_within(*window)
        if active != self._active:
            if active:
                log.debug("echo canceller on: the speaker plays")
            else:
                before, after = self._energy
                log.debug("echo canceller idle: the speaker is silent; %.1f dB less at the microphone over that playback (echo and anything said over it)",
                          10 * np.log10((before + 1.0) / (after + 1.0)))
            self._active = active
            self._probe = []
            self._energy = [0.0, 0.0]
        if not active:
            return pcm
        started = time.process_time()
        near = np.frombuffer(pcm, dtype=np.int16)
        far = self.reference.samples(captured + self.lead, n)
        self._measure_delay(near, far)
        out = near.copy()
        for i in range(0, n - FRAME + 1, FRAME):
            reverse = self._rtc.AudioFrame(far[i : i + FRAME].tobytes(), RATE, 1, FRAME)
            self._apm.process_reverse_stream(reverse)
            frame = self._rtc.AudioFrame(near[i : i + FRAME].tobytes(), RATE, 1, FRAME)
            self._apm.set_stream_delay_ms(int(self.lead * 1000))
            self._apm.process_stream(frame)
            out[i : i + FRAME] = np.frombuffer(bytes(frame.data), dtype=np.int16)
            self.frames += 1
        self._energy[0] += float(np.dot(near.astype(np.float64), near.astype(np.float64)))
        self._energy[1] += float(np.dot(out.astype(np.float64), out.astype(np.float64)))
        self.seconds_spent += time.process_time() - started
        return out.tobytes()

    def _measure_delay(self, near: np.ndarray, far: np.ndarray) -> None:
        """Once per stretch of playback: where the echo is, relative to the reference as fed
        (logged with -v; AEC3 finds it by itself, this is for the bench and for diagnosis)."""
        if self._probe is None:
            return
        self._probe.append((near, far))
        if sum(len(f) for _, f in self._probe) < 2 * RATE:
            return
        mic = np.concatenate([m for m, _ in self._probe]).astype(np.float64)
        ref = np.concatenate([f for _, f in self._probe]).astype(np.float64)
        self._probe = None
        if not ref.any() or not mic.any():
            return
        size = 1 << (len(mic) + len(ref)).bit_length()
        corr = np.fft.irfft(np.fft.rfft(mic, size) * np.conj(np.fft.rfft(ref, size)), size)
        lags = np.concatenate([corr[: RATE // 2], corr[-RATE // 2 :]])  # -0.5 .. +0.5 s
        lag = int(np.argmax(np.abs(lags)))
        lag = lag if lag < RATE // 2 else lag - 2 * (RATE // 2)
        peak = float(np.abs(lags).max() / (np.sqrt(np.dot(mic, mic) * np.dot(ref, ref)) + 1e-9))
        self.delays.append(lag / RATE)
        log.debug("echo canceller: the echo comes %.0f ms after its reference as fed (correlation %.2f; the lead is %.0f ms)", 1000 * lag / RATE, peak, 1000 * self.lead)


def build_echo_canceller(reference: PlaybackReference) -> tuple[EchoCanceller | None, str | None]:
    """The canceller, or None and a sentence saying why it cannot run here."""
    try:
        return EchoCanceller(reference), None
    except EchoUnavailable as exc:
        return None, str(exc)
