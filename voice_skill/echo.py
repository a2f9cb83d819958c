"""Echo cancellation of the skill's own voice, at the audio edge (issue 13).

The runner knows every sample the speaker plays. `PlaybackReference` keeps them (at 16 kHz, in
memory, the last few seconds only) on the monotonic clock at which they are expected to leave
the speaker; `EchoCanceller` takes each microphone chunk, stamped with its capture time (which
`audio.SampleClock` keeps steady), and subtracts what a linear filter of that reference
predicts the microphone hears of it.

- Alignment. PortAudio's latency figures are estimates, and every sound opens an output stream
  of its own whose delay differs (measured in the virtual room: the echo comes 260-330 ms
  before the reference's stamp). At the start of each sound (an answer: the chime, a short
  gap, the words) the canceller cross-correlates the first ALIGN_SECONDS of the microphone
  with that sound's reference (GCC-PHAT), and takes the delay once a clear peak is found
  twice in a row. Until then the room's own background comes out instead of the microphone
  (the skill is deaf for that half second, as it is without echo cancellation), so the start
  of an answer is never taken for speech. The reference is then fed MARGIN ahead of its echo,
  every time, so the echo path the filter has learnt stays the same from one answer to the
  next; the session's first answer starts the filter as the measured delay and level.
- A linear filter (`LinearEchoFilter`): a partitioned-block frequency-domain adaptive filter
  with two paths, as in speexdsp's MDF. It has no non-linear suppression: nothing said over
  the answer is attenuated. WebRTC's AEC3 was measured first (bench/barge_in.py offline): it
  removes more echo, but its suppressor also takes the start of a word said over the answer,
  and the wake engine heard no "stop" through it.
- A gate: what the filter leaves that is no more than the residual of the echo (GATE_DB below
  the echo it predicts), or louder than the microphone heard, is replaced by the room's
  background: the front end would take the residual, speech after all, for speech.
- A check: a sound whose echo the filter does not reduce by MIN_REDUCTION_DB in any quarter
  second of its first CHECK_SECONDS is not heard further (the delay found must be wrong, and
  its own words must never act). Later, a second of playing reference in which no quarter is
  reduced that much means the echo has moved: the filter goes back to the weights that last
  cancelled it, and the delay is found again (deaf meanwhile). Sounds shorter than
  MIN_SOUND_SECONDS (the ready sound, a lone chime) pass uncancelled.
- Underruns: on a busy machine the output can run dry mid-answer (seen in the virtual room
  with Piper answers), and the rest plays later than stamped by a gap no one measures. The
  speaker reports it (PortAudio's write says so) and the rest of the sound becomes a
  `Segment` that `resumes` it, which the canceller aligns again near the old delay.

Through a reverberant echo path (offline, sox reverb) the filter removes only 8-16 dB: the
check then makes the skill deaf while it speaks, as without echo cancellation. So it is off
unless [audio] echo_cancellation = true. Nothing here writes audio anywhere or opens a
connection; it is numpy only.
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

FRAME = RATE // 100  # the filter works on 10 ms blocks
FILTER_TAPS = 4096  # about 0.26 s of echo path (rounded up to whole blocks): a speaker, a mic and a bedroom's reflections
EARLIEST, LATEST = -0.4, 0.4  # seconds: where the echo may come relative to the reference's stamp (measured in the
# virtual room: 260-330 ms before it, PortAudio's latency figures being too high)
ALIGN_SECONDS = 0.5  # of each sound, to find its delay on
ALIGN_GIVE_UP = 2.0  # ... or at most this long, while no clear delay shows
CHECK_SECONDS = 1.0  # of cancelling each sound: is the echo much weaker? (else the delay found is wrong)
MIN_REDUCTION_DB = 10.0  # ... by this much, in its best quarter second; and later, in any second of it the reference fills
PLAYING_DBFS = -45.0  # a quarter second whose reference is this loud holds echo (not a pause between sentences)
REALIGN_EARLIER, REALIGN_LATER = 0.2, 1.0  # seconds around the delay in use, where to look again (an underrun only ever makes it later)
MIN_SOUND_SECONDS = 1.0  # shorter sounds (the chime, the ready sound) pass uncancelled
MIN_CLARITY = 3.0  # the correlation peak over the 99th percentile of the other lags, for a delay to count
MARGIN = 0.03  # seconds: the reference is fed this far ahead of its echo, for a delay found slightly late
GATE_DB = 20.0  # what is left this far below the predicted echo is its residual: the room's background goes on instead
GATE_HANG = 10  # blocks (100 ms) the gate stays open after something louder
ECHO_RELEASE = 0.9  # per block: how fast the predicted echo's power may fall (a room's reverberation)
HISTORY_SECONDS = 5.0  # reference kept after it has played
ECHO_TAIL = 0.6  # seconds after the reference falls silent in which the canceller still runs


@dataclass(frozen=True)
class Segment:
    starts: float  # time.monotonic() at which samples[0] leaves the speaker
    samples: np.ndarray  # int16, 16 kHz mono
    resumes: float | None = None  # the stamp of the sound this is the rest of, after the output ran dry (an underrun)

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
        with self._lock:
            self._segments = self._trimmed(segment, max(0, int((at - segment.starts) * RATE)))

    def _trimmed(self, segment: Segment, keep: int) -> list[Segment]:
        """The segments, with `segment` cut to its first `keep` samples."""
        return [replace(s, samples=s.samples[:keep]) if s is segment else s for s in self._segments]

    def resumed(self, segment: Segment, offset: float) -> Segment:
        """The output ran dry (an underrun) before the sound's sample at `offset` seconds:
        from there on it plays later than stamped, by a gap no one measured. The rest becomes a
        sound of its own (stamped as if there were no gap), which the canceller aligns again."""
        keep = int(round(offset * RATE))
        rest = Segment(segment.starts + keep / RATE, segment.samples[keep:], resumes=segment.starts)
        with self._lock:
            self._segments = self._trimmed(segment, keep) + [rest]
        return rest

    def samples(self, starts: float, count: int, only: float | None = None) -> np.ndarray:
        """The reference from `starts` (monotonic seconds) on, `count` samples (zeros where nothing
        plays); `only`: of the sound stamped then alone."""
        out = np.zeros(count, dtype=np.int16)
        with self._lock:
            segments = [s for s in self._segments if only is None or s.starts == only]
        for segment in segments:
            offset = int(round((segment.starts - starts) * RATE))  # where the segment begins in `out`
            first = max(0, -offset)
            last = min(len(segment.samples), count - offset)
            if last > first:
                out[offset + first : offset + last] += segment.samples[first:last]
        return out

    def newest_within(self, starts: float, ends: float) -> Segment | None:
        """The newest sound playing between `starts` and `ends` (None: none). Each sound has
        an output stream of its own, and with it a delay of its own."""
        with self._lock:
            return max((s for s in self._segments if s.starts < ends and s.ends > starts), key=lambda s: s.starts, default=None)


class LinearEchoFilter:
    """A partitioned-block frequency-domain adaptive filter (overlap-save, BLOCK samples per
    block, `taps` long) with two paths: the background filter adapts on every block; the
    foreground filter makes the output and takes the background's weights while they leave
    clearly less echo (BETTER), and the background goes back to the foreground's weights when
    it does clearly worse (WORSE: someone talks over the answer, which would pull the filter
    away from the echo path)."""

    BLOCK = FRAME
    STEP = 0.8
    REFERENCE_FLOOR_DBFS = -60.0
    BETTER, WORSE = 0.5, 4.0  # error energy ratios, background to foreground
    MEMORY = 0.8  # smoothing of the error energies, per block

    def __init__(self, taps: int = FILTER_TAPS):
        n, parts = self.BLOCK, -(-taps // self.BLOCK)
        self.taps = n * parts
        self._floor = parts * 2 * n * 10 ** (self.REFERENCE_FLOOR_DBFS / 10)  # the summed power per bin of a reference at that level
        self._spectra = np.zeros((parts, n + 1), complex)  # the reference's last blocks, newest first
        self._background = np.zeros((parts, n + 1), complex)
        self._foreground = self._background.copy()
        self._previous = np.zeros(n)
        self._errors = [0.0, 0.0]  # smoothed error energy: background, foreground

    def prime(self, far: np.ndarray) -> None:
        """A new sound begins: `far` is the reference that played just before
        its first block to cancel (whole blocks, oldest first), whose echo is still coming.
        Nothing adapts; the background starts again from the foreground's weights."""
        self._background = self._foreground.copy()
        self._errors = [0.0, 0.0]
        n = self.BLOCK
        for i in range(max(0, len(far) - len(self._spectra) * n), len(far) - n + 1, n):
            self._spectra = np.roll(self._spectra, 1, axis=0)
            self._spectra[0] = np.fft.rfft(np.concatenate([self._previous, far[i : i + n]]))
            self._previous = far[i : i + n]

    @property
    def empty(self) -> bool:
        return not self._foreground.any()

    def start_as_delay(self, seconds: float, gain: float) -> None:
        """Start from the simplest echo path: the reference `seconds` late, times `gain` (on a
        digital loopback that is the whole path; in a room, its direct part)."""
        n = self.BLOCK
        tap = min(int(round(seconds * RATE)), self.taps - 1)
        weights = np.zeros(2 * n)
        weights[tap % n] = gain
        self._foreground = np.zeros_like(self._foreground)
        self._foreground[tap // n] = np.fft.rfft(weights)
        self._background = self._foreground.copy()

    def weights(self) -> np.ndarray:
        """The foreground's weights (a copy): the echo path as the filter knows it."""
        return self._foreground.copy()

    def restore(self, weights: np.ndarray) -> None:
        """Go back to weights that cancelled the echo (after adapting to a moved one)."""
        self._foreground = weights.copy()
        self._background = weights.copy()
        self._errors = [0.0, 0.0]

    def block(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """One block (floats): the microphone with the predicted echo taken out."""
        n = self.BLOCK
        self._spectra = np.roll(self._spectra, 1, axis=0)
        self._spectra[0] = np.fft.rfft(np.concatenate([self._previous, far]))
        self._previous = far
        back = near - np.fft.irfft((self._background * self._spectra).sum(0))[n:]
        front = near - np.fft.irfft((self._foreground * self._spectra).sum(0))[n:]
        self._errors = [self.MEMORY * e + (1 - self.MEMORY) * float(x @ x) for e, x in zip(self._errors, (back, front))]
        power = (np.abs(self._spectra) ** 2).sum(0)
        if power.mean() > 1e-10:
            # Regularised relative to the reference's mean power, and absolutely (REFERENCE_FLOOR):
            # as the reference fades out the steps would otherwise grow without bound.
            gradient = np.conj(self._spectra) * np.fft.rfft(np.concatenate([np.zeros(n), back])) / (power + 1e-3 * power.mean() + self._floor)
            constrained = np.fft.irfft(self.STEP * gradient, axis=1)
            constrained[:, n:] = 0
            self._background += np.fft.rfft(constrained, axis=1)
        if self._errors[0] < self.BETTER * self._errors[1]:
            self._foreground = self._background.copy()
            self._errors[1] = self._errors[0]
        elif self._errors[0] > self.WORSE * self._errors[1]:
            self._background = self._foreground.copy()
            self._errors[0] = self._errors[1]
        return front


def find_delay(mic: np.ndarray, reference: np.ndarray, earliest: float, latest: float) -> tuple[float, float] | None:
    """The delay (seconds) after which `reference` comes back in `mic`, between `earliest` and
    `latest`, and how clearly (the correlation peak over the 99th percentile of the rest);
    `reference` starts `latest` seconds before `mic` and is `latest - earliest` seconds
    longer. GCC-PHAT: the cross-spectrum is whitened, so the answer's strong low notes do not
    blur the peak. None when either is silent."""
    mic, reference = mic.astype(np.float64), reference.astype(np.float64)
    if not mic.any() or not reference.any():
        return None
    size = 1 << (len(mic) + len(reference)).bit_length()
    cross = np.conj(np.fft.rfft(mic, size)) * np.fft.rfft(reference, size)
    corr = np.fft.irfft(cross / (np.abs(cross) + 1e-12), size)[: int(round((latest - earliest) * RATE)) + 1]
    lag = int(np.argmax(corr))  # mic[i] ~ reference[i + lag]
    rest = np.delete(np.abs(corr), slice(max(0, lag - 40), lag + 41))
    clarity = float(corr[lag] / (np.percentile(rest, 99) + 1e-12)) if len(rest) else 0.0
    return latest - lag / RATE, clarity


class EchoCanceller:
    """The linear filter over the microphone chunks, with the speaker's reference aligned by
    the measured delay.

    process() takes and returns 16 kHz int16 PCM. Chunks with no capture time (file input), and
    chunks with no reference in or just before them, pass unchanged."""

    def __init__(self, reference: PlaybackReference, taps: int = FILTER_TAPS):
        self.reference = reference
        self.filter = LinearEchoFilter(taps)
        self._delay: float | None = None  # seconds from the current sound's stamp to its echo (None: not found)
        self._found: tuple[float, float] | None = None  # the last delay and clarity found while aligning
        self._window = (EARLIEST, LATEST)  # where to look for the current sound's delay, relative to its stamp
        self._quarters: list[list] = []  # [microphone, what the filter leaves, reference] energies and samples, per quarter second
        self._first_check = False  # the quarters are those of the first CHECK_SECONDS after an alignment
        self._good: np.ndarray | None = None  # the filter's weights when it last passed a check
        self.delays: list[float] = []  # every delay measured, one per sound (for the bench and -v)
        self.frames = 0  # 10 ms blocks cancelled
        self._active = False
        self._aligning: list[tuple[np.ndarray, float]] | None = None  # a sound's first chunks, until its delay is found
        self._sound: float | None = None  # the stamp of the sound whose delay is in use (or being found)
        self._energy = [0.0, 0.0]  # microphone in, echo-cancelled out, over the current stretch of playback
        self._background = np.zeros(0, np.int16)  # the last chunk heard while the speaker was silent
        self._background_at = 0
        self._echo_power = 0.0  # the predicted echo's power per block, with a slow release
        self._open = 0  # blocks the gate stays open
        self.gated = 0  # blocks replaced by the room's background

    def process(self, pcm: bytes, captured: float | None) -> bytes:
        """Echo-cancelled PCM for one chunk captured from `captured` (monotonic seconds of its
        first sample). Returns as many bytes as it was given (samples short of a whole 10 ms
        block at the chunk's end, after resampling from an odd capture rate, pass unchanged)."""
        if captured is None:
            return pcm
        n = len(pcm) // 2
        newest = self.reference.newest_within(captured - ECHO_TAIL - LATEST, captured + n / RATE - EARLIEST)
        if newest is not None and len(newest.samples) < MIN_SOUND_SECONDS * RATE and newest.resumes is None:
            newest = None  # a chime or a tone: too short to align on, and nothing to say over
        active = newest is not None
        if active != self._active:
            self._stretch(active)
        if active and newest.starts != self._sound:
            if newest.resumes is not None and newest.resumes == self._sound and self._delay is not None:
                log.debug("echo canceller: the speaker ran dry (an underrun): the rest of the sound comes later; finding its delay again (deaf until then)")
                self._realign(newest.starts)
            else:  # a new sound (a new output stream): its delay is found again
                log.debug("echo canceller: a sound starts; finding its delay (deaf until then)")
                self._find_delay_of(newest.starts, (EARLIEST, LATEST))
        if not active:
            self._background = np.frombuffer(pcm, dtype=np.int16).copy()  # the room with the speaker silent
            self._background_at = 0
            return pcm
        near = np.frombuffer(pcm, dtype=np.int16)
        if self._aligning is not None:
            out = self._align(near, captured)
        else:
            out = self._cancel(near, captured)
        self._energy[0] += float(np.dot(near.astype(np.float64), near.astype(np.float64)))
        self._energy[1] += float(np.dot(out.astype(np.float64), out.astype(np.float64)))
        return out.tobytes()

    def _stretch(self, active: bool) -> None:
        if active:
            log.debug("echo canceller on: the speaker plays")
        else:
            before, after = self._energy
            log.debug("echo canceller idle: the speaker is silent; %.1f dB less at the microphone over that playback (echo and anything said over it)",
                      10 * np.log10((before + 1.0) / (after + 1.0)))
            self._aligning = None
            self._sound = None
        self._active = active
        self._energy = [0.0, 0.0]

    def _realign(self, sound: float) -> None:
        """Look for the delay again, near the one in use: `sound`'s echo moved (the output ran
        dry and the rest of the answer plays later, or the filter lost it)."""
        if self._good is not None:
            self.filter.restore(self._good)  # it adapted to the moved echo meanwhile: back to the path it knew
        self._find_delay_of(sound, (self._delay - REALIGN_EARLIER, self._delay + REALIGN_LATER))

    def _find_delay_of(self, sound: float, window: tuple[float, float]) -> None:
        """Be deaf while `sound`'s delay is found, within `window` (relative to its stamp)."""
        self._sound = sound
        self._window = window
        self._delay = None
        self._found = None
        self._aligning = []

    def _align(self, near: np.ndarray, captured: float) -> np.ndarray:
        """Keep a sound's first chunks until ALIGN_SECONDS of them hold its echo; then find
        the delay. The room's background comes out meanwhile."""
        self._aligning.append((near, captured))
        first = self._aligning[0][1]
        mic = np.concatenate([c for c, _ in self._aligning])
        if len(mic) < ALIGN_SECONDS * RATE:
            return self._quiet(len(near))
        # This sound alone: an earlier one (the ready sound, the end of the last answer) came
        # through another stream, with another delay.
        earliest, latest = self._window
        reference = self.reference.samples(first - latest, len(mic) + int(round((latest - earliest) * RATE)), only=self._sound)
        found = find_delay(mic, reference, earliest, latest)
        # A clear peak, found again a chunk later: an answer begins with the chime, whose
        # tones alone can give a clear peak at a wrong delay (measured: 95 ms off).
        earlier, self._found = self._found, found
        agrees = found is not None and earlier is not None and abs(found[0] - earlier[0]) <= 1.5 / RATE
        if agrees and found[1] >= MIN_CLARITY and earlier[1] >= MIN_CLARITY:
            self._delay = found[0]
            self.delays.append(found[0])
            self._aligning = None
            self._quarters = []
            self._first_check = True
            if self.filter.empty:  # the first answer of the session: start from the echo's delay and level
                aligned = self.reference.samples(first - self._delay, len(mic)).astype(np.float64)
                gain = float(mic.astype(np.float64) @ aligned / (aligned @ aligned + 1e-9))
                self.filter.start_as_delay(MARGIN, gain)
                log.debug("echo canceller: the filter starts as the reference %.0f ms late, times %.2f", 1000 * MARGIN, gain)
            # The reference whose echo is still to come when cancelling starts.
            taps = self.filter.taps
            now = captured + len(near) / RATE
            self.filter.prime(self.reference.samples(now - self._delay + MARGIN - taps / RATE, taps).astype(np.float64) / 32768.0)
            log.debug("echo canceller: the echo comes %.0f ms after its reference's stamp (clarity %.1f)", 1000 * found[0], found[1])
        elif len(mic) >= ALIGN_GIVE_UP * RATE:
            self._aligning = None
            log.debug("echo canceller: no clear delay in the first %.1f s (clarity %.1f): deaf while this sound plays", len(mic) / RATE, found[1] if found else 0.0)
        return self._quiet(len(near))

    def _cancel(self, near: np.ndarray, captured: float) -> np.ndarray:
        if self._delay is None:
            return self._quiet(len(near))  # no delay found for this sound: deaf while it plays, as without echo cancellation
        n = len(near)
        far = self.reference.samples(captured - self._delay + MARGIN, n).astype(np.float64) / 32768.0
        near_f = near.astype(np.float64) / 32768.0
        out = to_int16_mono(near_f.astype(np.float32))
        left = near_f.copy()  # what the filter leaves, before the gate
        block = LinearEchoFilter.BLOCK
        for i in range(0, n - block + 1, block):
            left[i : i + block] = self.filter.block(near_f[i : i + block], far[i : i + block])
            out[i : i + block] = self._gate(left[i : i + block], near_f[i : i + block])
            self.frames += 1
        if not self._check(near_f, left, far):
            return self._quiet(n)
        return out

    def _check(self, near: np.ndarray, left: np.ndarray, far: np.ndarray) -> bool:
        """Is the echo still cancelled? What the filter leaves must be MIN_REDUCTION_DB quieter
        than the microphone in the best quarter second (someone talking over it spoils only
        some of them):
        - of the first CHECK_SECONDS after an alignment: if in none, the delay found is wrong,
          and the rest of the sound is not heard rather than heard uncancelled (its own words
          must never act);
        - later, of any CHECK_SECONDS in which the reference plays: if in none, the echo has
          moved (an output that ran dry unnoticed, a lost filter), and its delay is found again."""
        quarters = self._quarters
        if not quarters or quarters[-1][3] >= RATE // 4:
            quarters.append([0.0, 0.0, 0.0, 0])
        quarter = quarters[-1]
        quarter[0] += float(near @ near)
        quarter[1] += float(left @ left)
        quarter[2] += float(far @ far)
        quarter[3] += len(near)
        if quarter[3] < RATE // 4 or len(quarters) < CHECK_SECONDS * 4:
            return True
        if self._first_check:
            self._first_check = False
            best = max(10 * np.log10((a + 1e-9) / (b + 1e-9)) for a, b, _, _ in quarters)
            del quarters[:-1]
            if best >= MIN_REDUCTION_DB:
                self._good = self.filter.weights()
                return True
            log.debug("echo canceller: at best %.1f dB less in its first %.0f s: the delay found must be wrong; deaf while this sound plays", best, CHECK_SECONDS)
            self._delay = None
            return False
        del quarters[: -int(CHECK_SECONDS * 4)]
        playing = [(a, b) for a, b, f, k in quarters if f / k > 10 ** (PLAYING_DBFS / 10)]
        if len(playing) < len(quarters):
            return True  # a pause in the answer, or its end: nothing to tell from
        reductions = [10 * np.log10((a + 1e-9) / (b + 1e-9)) for a, b in playing]
        if reductions[-1] >= MIN_REDUCTION_DB:
            self._good = self.filter.weights()  # the quarter just gone was cancelled: these weights know the path
        if max(reductions) >= MIN_REDUCTION_DB:
            return True
        log.debug("echo canceller: at best %.1f dB less over the last %.0f s: the echo has moved; finding its delay again (deaf until then)", max(reductions), CHECK_SECONDS)
        self._realign(self._sound)
        return False

    def _gate(self, left: np.ndarray, near: np.ndarray) -> np.ndarray:
        """What is left of a block after cancelling, or the room's own background where what
        is left is no more than the residual of the echo (GATE_DB below the echo the filter
        predicts: the front end would take that residual, speech after all, for speech), or
        louder than what the microphone heard (the prediction is wrong, and what is left is
        the answer itself)."""
        echo = near - left
        self._echo_power = max(float(echo @ echo), ECHO_RELEASE * self._echo_power)
        power = float(left @ left)
        if power > 2.0 * float(near @ near) + 1e-12:
            self._open = 0  # louder than the microphone: the prediction is wrong
        elif power >= self._echo_power * 10 ** (-GATE_DB / 10):
            self._open = GATE_HANG
            return to_int16_mono(left.astype(np.float32))
        elif self._open > 0:
            self._open -= 1
            return to_int16_mono(left.astype(np.float32))
        self.gated += 1
        return self._quiet(len(left))

    def _quiet(self, n: int) -> np.ndarray:
        """n samples of the room's own background, as heard before the speaker played."""
        if not len(self._background):
            return np.zeros(n, np.int16)
        reps = -(-(self._background_at + n) // len(self._background))
        out = np.tile(self._background, reps)[self._background_at : self._background_at + n]
        self._background_at = (self._background_at + n) % len(self._background)
        return out
