"""Audio at the edges: a WAV file or a microphone in, a speaker out, the chime.

Every source yields AudioChunk objects of 16 kHz mono int16 PCM, whatever the file or the
device delivers (other rates are resampled with soxr, channels are mixed down). Nothing
here writes audio anywhere but to the output device.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

import numpy as np

from voice_skill.errors import UserError
from voice_skill.recognizers.base import SAMPLE_RATE

if TYPE_CHECKING:
    from voice_skill.echo import PlaybackReference

log = logging.getLogger(__name__)

CHUNK_SECONDS = 0.1
CLOCK_RESYNC_SECONDS = 0.5  # a block this much later than the sample clock says samples were lost
NARROWBAND_RATE = 16000  # below this, a file lacks the upper half of the speech band
PLAYBACK_GRACE_SECONDS = 3.0  # a sound still "playing" this long after its end is stuck
RETRY_SECONDS = 0.5  # a lost microphone is looked for again this often, however long it has been gone
STILL_LOST_LOG_SECONDS = 60.0  # ... and said to be still missing in the log this often


@dataclass(frozen=True)
class AudioChunk:
    pcm: bytes  # signed 16-bit little-endian, mono
    rate: int
    start: float  # seconds into the stream
    captured: float | None = None  # time.monotonic() when its first sample was captured (live input only)


class AudioSource(Protocol):
    def chunks(self) -> Iterator[AudioChunk]: ...

    def close(self) -> None: ...


def to_int16_mono(block: np.ndarray) -> np.ndarray:
    """float32 frames x channels (or 1-D) -> int16 mono."""
    if block.ndim == 2:
        block = block.mean(axis=1)
    return (np.clip(block, -1.0, 1.0) * 32767.0).astype(np.int16)


class WavSource:
    """Reads a sound file of any rate and channel count as 16 kHz mono, as fast as asked."""

    def __init__(self, path: Path, chunk_seconds: float = CHUNK_SECONDS):
        import soundfile

        self.path = Path(path)
        self._chunk_seconds = chunk_seconds
        if self.path.is_dir():
            raise UserError(f"--input {self.path}: that is a folder; give a WAV file")
        if not self.path.exists():
            raise UserError(f"--input {self.path}: no such file")
        if not self.path.is_file():
            raise UserError(f"--input {self.path}: not a WAV file (a device or other special file); give a WAV file")
        if self.path.stat().st_size == 0:
            raise UserError(f"--input {self.path}: the file is empty; record or generate a WAV file")
        try:
            self._file = soundfile.SoundFile(str(self.path))
        except FileNotFoundError:
            raise UserError(f"--input {self.path}: no such file") from None
        except (soundfile.LibsndfileError, RuntimeError, OSError) as exc:
            detail = getattr(exc, "error_string", None) or str(exc)
            raise UserError(f"--input {self.path}: not a readable WAV file ({detail}); convert it with 'sox IN -r 16000 -c 1 OUT.wav'") from None
        if self._file.frames == 0:
            self._file.close()
            raise UserError(f"--input {self.path}: the file holds no audio; record or generate a non-empty WAV file")
        if not 4000 <= self._file.samplerate <= 768000:  # a damaged header; 1 Hz would take hours to resample
            self._file.close()
            raise UserError(f"--input {self.path}: a sample rate of {self._file.samplerate} Hz is not usable audio (4000 to 768000 Hz); convert it with 'sox IN -r 16000 -c 1 OUT.wav'")
        # libsndfile reads a WAV cut short without complaint; its log says "data : N (should be M)".
        # Sizes from 0x7FFF0000 up are the "unknown length" of a streamed WAV, not a cut.
        cut = re.search(r"^data\s*:\s*(\d+) \(should be (\d+)\)", self._file.extra_info, re.M)
        if cut and int(cut.group(2)) < int(cut.group(1)) < 0x7FFF0000:
            held = self._file.frames / self._file.samplerate
            self._file.close()
            raise UserError(
                f"--input {self.path}: the file is cut short (its header announces {held * int(cut.group(1)) / max(1, int(cut.group(2))):.1f} s "
                f"of audio, it holds {held:.1f} s); copy it again, or keep what is there with 'sox IN OUT.wav'"
            )
        self.rate = self._file.samplerate
        if self.rate < NARROWBAND_RATE:
            log.warning(
                "--input %s: %d Hz is narrowband (telephone) audio; the recognizers hear 16 kHz and miss much of "
                "it, so expect few or no wake phrases", self.path, self.rate,
            )
        self.channels = self._file.channels
        self.duration = self._file.frames / self.rate

    def chunks(self) -> Iterator[AudioChunk]:
        import soundfile
        import soxr

        resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32") if self.rate != SAMPLE_RATE else None
        block_frames = max(1, int(self.rate * self._chunk_seconds))
        emitted = 0
        try:
            while True:
                block = self._file.read(block_frames, dtype="float32", always_2d=True)
                last = len(block) < block_frames
                block = np.clip(np.nan_to_num(block), -1.0, 1.0)  # damaged float data: NaN/inf would warn and garble
                mono = block.mean(axis=1).astype(np.float32)
                if resampler is not None:
                    mono = resampler.resample_chunk(mono, last=last)
                if len(mono):
                    pcm = to_int16_mono(mono).tobytes()
                    yield AudioChunk(pcm, SAMPLE_RATE, emitted / SAMPLE_RATE)
                    emitted += len(pcm) // 2
                if last:
                    return
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise UserError(f"--input {self.path}: the file is damaged after {emitted / SAMPLE_RATE:.1f} s ({exc}); re-export it") from None
        finally:
            self._file.close()

    def close(self) -> None:
        self._file.close()


# ---------------------------------------------------------------- devices


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # PortAudio library missing
        raise UserError(f"PortAudio is not installed ({exc}); install it with 'apt-get install libportaudio2'") from None
    return sounddevice


def list_devices() -> list[dict]:
    sd = _sounddevice()
    return [dict(d, index=i) for i, d in enumerate(sd.query_devices())]


def default_devices() -> tuple[int | None, int | None]:
    """PortAudio's default input and output device indexes (None where there is none)."""
    sd = _sounddevice()
    found = []
    for index in sd.default.device:
        found.append(int(index) if index is not None and int(index) >= 0 else None)
    return found[0], found[1]


def resolve_device(spec: str | int | None, kind: str) -> int | None:
    """A device index from a name (substring, case-insensitive) or an index; None = default."""
    if spec is None or spec == "":
        return None
    option = f"--{kind}-device (or [audio] {kind}_device)"
    channels_key = "max_input_channels" if kind == "input" else "max_output_channels"
    devices = list_devices()
    if isinstance(spec, int) or str(spec).strip().isdigit():
        index = int(spec)
        if index >= len(devices) or devices[index][channels_key] < 1:
            raise UserError(f"{option} {spec}: no {kind} device with that index; run 'voice-skill devices' to list them")
        return index
    wanted = str(spec).lower()
    matches = [d for d in devices if d[channels_key] > 0 and wanted in d["name"].lower()]
    exact = [d for d in matches if d["name"].lower() == wanted]
    if exact:
        return exact[0]["index"]
    if not matches:
        raise UserError(f"{option} {spec!r}: no {kind} device by that name; run 'voice-skill devices' to list them")
    return matches[0]["index"]


class DeviceLost(Exception):
    """A device stream failed while running."""


def reinitialize_portaudio() -> None:
    """PortAudio keeps the device list it saw at start-up; re-read it (after a device change)."""
    sd = _sounddevice()
    try:
        sd._terminate()
    except Exception:
        pass
    sd._initialize()


class SampleClock:
    """When each block of a stream was captured, on time.monotonic(). Blocks arrive in bursts
    (measured in the virtual room: up to 0.11 s late, in a sawtooth), so the time comes from
    counting samples, from the least late arrival so far: it moves only earlier, and the
    count never jumps. A block far later than the count says (CLOCK_RESYNC_SECONDS) means
    samples were lost: the count starts again there."""

    def __init__(self, rate: int):
        self.rate = rate
        self._origin: float | None = None  # time.monotonic() of the first sample counted
        self._counted = 0  # samples counted since then

    def restart(self) -> None:
        self._origin = None

    def block(self, arrived: float, frames: int) -> float:
        """The capture time of a block of `frames` samples whose arrival says it began at `arrived`."""
        if self._origin is not None and arrived - (self._origin + self._counted / self.rate) > CLOCK_RESYNC_SECONDS:
            self._origin = None
        if self._origin is None:
            self._origin, self._counted = arrived, 0
        self._origin = min(self._origin, arrived - self._counted / self.rate)
        captured = self._origin + self._counted / self.rate
        self._counted += frames
        return captured


class Microphone:
    """A live PortAudio input stream, captured at a rate the device supports, as 16 kHz chunks.

    The PortAudio callback only copies into a bounded queue; when the consumer falls behind,
    blocks are dropped and counted, and input overflows reported by PortAudio are counted:
    both are logged, never fatal. A stream that errors or goes silent-dead raises DeviceLost.
    """

    STALL_SECONDS = 2.0  # no block for this long from a running stream: the device is gone
    # ... and for the first block of a stream just opened: a sound server's idle source starts
    # late (the virtual room's: 0 to 2.0 s after opening, measured over 65 opens), and a stream
    # given up just before its first block is an outage of its own.
    START_SECONDS = 5.0

    def __init__(self, device: int | None = None, rate: int | None = None, chunk_seconds: float = CHUNK_SECONDS, queue_seconds: float = 5.0):
        self._sd = _sounddevice()
        self._device = device
        self._chunk_seconds = chunk_seconds
        self._queue: queue.Queue[tuple[np.ndarray, float] | None] = queue.Queue(maxsize=max(2, int(queue_seconds / chunk_seconds)))
        self.overflows = 0
        self.dropped_blocks = 0
        self._reported = (0, 0)
        self._stream = None
        self._closed = threading.Event()
        self.rate = self._check_rate(rate) if rate else self._pick_rate()
        self._clock = SampleClock(self.rate)

    def _check_rate(self, rate: int) -> int:
        """A rate asked for (--input-rate): the device must exist and take it."""
        sd = self._sd
        try:
            info = sd.query_devices(self._device, "input")
        except Exception as exc:
            raise UserError(f"no usable microphone ({exc}); plug one in or choose one with --input-device (see 'voice-skill devices')") from None
        try:
            sd.check_input_settings(device=self._device, samplerate=rate, channels=1, dtype="int16")
        except Exception as exc:
            raise UserError(f"--input-rate {rate}: the microphone {info['name']!r} does not take it ({exc}); leave --input-rate out or use {int(info['default_samplerate'])}") from None
        return rate

    def _pick_rate(self) -> int:
        sd = self._sd
        try:
            sd.check_input_settings(device=self._device, samplerate=SAMPLE_RATE, channels=1, dtype="int16")
            return SAMPLE_RATE
        except Exception:
            pass
        try:
            info = sd.query_devices(self._device, "input")
        except Exception as exc:
            raise UserError(f"no usable microphone ({exc}); plug one in or choose one with --input-device (see 'voice-skill devices')") from None
        rate = int(info["default_samplerate"])
        try:
            sd.check_input_settings(device=self._device, samplerate=rate, channels=1, dtype="int16")
        except Exception as exc:
            raise UserError(f"the microphone {info['name']!r} cannot be opened ({exc}); choose another with --input-device") from None
        return rate

    def _callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self.overflows += 1
            self._clock.restart()  # samples were lost: count again
        # When the block's first sample reached the microphone: now, less the block and the
        # input latency PortAudio reports (an estimate; the echo canceller finds its error),
        # steadied by counting samples (SampleClock).
        latency = self._stream.latency if self._stream is not None else 0.0
        captured = self._clock.block(time.monotonic() - frames / self.rate - latency, frames)
        try:
            self._queue.put_nowait((indata[:, 0].copy(), captured))
        except queue.Full:
            self.dropped_blocks += 1

    def open(self) -> None:
        try:
            self._stream = self._sd.InputStream(
                device=self._device,
                samplerate=self.rate,
                channels=1,
                dtype="int16",
                blocksize=int(self.rate * self._chunk_seconds),
                callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise DeviceLost(f"cannot open the microphone ({exc})") from None
        log.info("microphone open at %d Hz", self.rate)

    def _report_losses(self) -> None:
        now = (self.overflows, self.dropped_blocks)
        if now != self._reported:
            log.warning("microphone: %d input overflow(s), %d block(s) dropped so far (the computer is too busy)", *now)
            self._reported = now

    def blocks(self) -> Iterator[np.ndarray]:
        """Raw int16 blocks at the capture rate, until closed; DeviceLost when the stream dies."""
        for block, _ in self.timed_blocks():
            yield block

    def timed_blocks(self) -> Iterator[tuple[np.ndarray, float]]:
        """blocks(), each with the time.monotonic() at which its first sample was captured."""
        if self._stream is None:
            self.open()
        last = time.monotonic()
        allowed = self.START_SECONDS  # until the first block
        while not self._closed.is_set():
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                stream = self._stream
                if self._closed.is_set():
                    return
                if stream is None or not stream.active or time.monotonic() - last > allowed:
                    raise DeviceLost("the microphone stopped delivering audio")
                continue
            if item is None:
                return
            last = time.monotonic()
            allowed = self.STALL_SECONDS
            self._report_losses()
            yield item

    def close(self) -> None:
        self._closed.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._stop_stream()

    def _stop_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception:
                pass


class LiveMicrophone:
    """The microphone as an endless AudioSource: 16 kHz chunks, surviving device loss.

    When the device fails mid-stream it logs, then looks for it again every RETRY_SECONDS for
    as long as it is gone: re-initialises PortAudio (which otherwise keeps its start-up device
    list) and reopens the device by the same name or index. A microphone plugged in again is
    heard within about that time, so that the first thing said after it is heard (issue 23: a
    back-off doubling to 10 s left it unheard for up to 10 s). An attempt costs about 30 ms of
    CPU (unplugged, the skill took 6.6 % of a core of a 2-core x86 in the virtual room; it
    only looks while it hears nothing); the log says the outage once, again when its reason
    changes and every STILL_LOST_LOG_SECONDS.
    Stream time keeps counting through the outage, by the capture clock.
    `on_lost` is called once per outage, when it begins, with the reason (before the wait).
    """

    def __init__(self, device: str | int | None = None, rate: int | None = None, retry_seconds: float = RETRY_SECONDS, on_lost: Callable[[str], None] | None = None):
        self._spec = device
        self._rate = rate
        self._retry_seconds = retry_seconds
        self._on_lost = on_lost
        self._closed = threading.Event()
        self._mic: Microphone | None = None
        self.reconnects = 0
        # Fail fast on bad input: an unknown device or no microphone at all is the user's to fix.
        self._mic = Microphone(resolve_device(device, "input"), rate)

    def chunks(self) -> Iterator[AudioChunk]:
        import soxr

        emitted = 0
        heard_until: float | None = None  # time.monotonic() at the end of the last chunk's audio
        outage: _Outage | None = None
        while not self._closed.is_set():
            mic = self._mic
            try:
                if mic is None:
                    mic = self._mic = self._reopen()
                    if self._closed.is_set():  # closed while it was being reopened
                        mic.close()
                        return
                resampler = soxr.ResampleStream(mic.rate, SAMPLE_RATE, 1, dtype="int16") if mic.rate != SAMPLE_RATE else None
                for block, captured in mic.timed_blocks():
                    if outage is not None:
                        log.info("microphone back after %.1f s", time.monotonic() - outage.began)
                        outage = None
                        if heard_until is not None:  # the clock goes on through the outage
                            emitted += max(0, round((captured - heard_until) * SAMPLE_RATE))
                    heard_until = captured + len(block) / mic.rate
                    if resampler is not None:
                        block = resampler.resample_chunk(block)
                    if len(block):
                        yield AudioChunk(block.astype(np.int16).tobytes(), SAMPLE_RATE, emitted / SAMPLE_RATE, captured)
                        emitted += len(block)
                return
            except (DeviceLost, UserError) as exc:
                if self._closed.is_set():
                    return
                if mic is not None:
                    mic.close()
                self._mic = None
                reason = str(exc)
                if outage is None:
                    outage = _Outage(time.monotonic(), reason, time.monotonic())
                    log.warning("microphone lost (%s); looking for it again every %.1f s", reason, self._retry_seconds)
                    if self._on_lost is not None:
                        self._on_lost(reason)
                elif reason != outage.reason or time.monotonic() - outage.logged >= STILL_LOST_LOG_SECONDS:
                    log.warning("microphone still missing after %.0f s (%s); looking for it again every %.1f s", time.monotonic() - outage.began, reason, self._retry_seconds)
                    outage.reason, outage.logged = reason, time.monotonic()
                else:
                    log.debug("microphone still missing (%s)", reason)
                if self._closed.wait(self._retry_seconds):
                    return
                self.reconnects += 1

    def _reopen(self) -> Microphone:
        """One attempt at the microphone again. What ALSA and PortAudio print of a failed one
        (a few lines each time, every RETRY_SECONDS all night) goes to the debug log."""
        from voice_skill.native_stderr import quiet_native_stderr

        with quiet_native_stderr(_portaudio_noise, "PortAudio"):
            reinitialize_portaudio()
            mic = Microphone(resolve_device(self._spec, "input"), self._rate)
            try:
                mic.open()
            except DeviceLost:
                mic.close()
                raise
        return mic

    def close(self) -> None:
        self._closed.set()
        if self._mic is not None:
            self._mic.close()


def _portaudio_noise(line: str) -> bool:
    """A line ALSA ("ALSA lib pcm_pulse.c:758:(pulse_prepare) ...") or PortAudio ("Expression
    'ret' failed in 'src/hostapi/alsa/pa_linux_alsa.c', line: 1812") print of their own, or
    the blank line after one."""
    return line.startswith(("ALSA lib ", "Expression '")) or not line.strip()


@dataclass
class _Outage:
    """A microphone outage in progress: when it began, and what the log last said of it."""

    began: float  # time.monotonic()
    reason: str
    logged: float  # time.monotonic()


# ---------------------------------------------------------------- output


@dataclass(frozen=True)
class Sound:
    """Rendered audio ready for the speaker: int16 mono."""

    samples: np.ndarray
    rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


def _notes(notes: list[tuple[float, float]], rate: int, level: float, volume: float, overtone: float = 0.0) -> Sound:
    """Soft notes one after the other: (Hz, seconds) each, with a sine-squared envelope and an
    optional second harmonic at `overtone` of the note's level."""
    parts = []
    for freq, seconds in notes:
        t = np.arange(int(rate * seconds)) / rate
        envelope = np.sin(np.pi * t / seconds) ** 2
        tone = np.sin(2 * np.pi * freq * t) + overtone * np.sin(4 * np.pi * freq * t)
        parts.append(tone * envelope)
    wave = np.concatenate(parts) * level * max(0.0, min(1.0, volume))
    return Sound((wave * 32767).astype(np.int16), rate)


def chime(rate: int = 22050, volume: float = 0.5) -> Sound:
    """A short soft two-note chime (a rising fifth), generated: no file needed."""
    return _notes([(659.25, 0.11), (987.77, 0.16)], rate, 0.25, volume, overtone=0.2)


def ready_sound(rate: int = 22050, volume: float = 0.5) -> Sound:
    """Listening has started: two soft low notes, rising (a major third), unlike the chime."""
    return _notes([(392.0, 0.12), (493.88, 0.18)], rate, 0.2, volume)


def lost_sound(rate: int = 22050, volume: float = 0.5) -> Sound:
    """The microphone is lost (the skill hears nothing): two low notes, falling a fifth,
    longer than the ready sound's, unlike anything else it plays."""
    return _notes([(329.63, 0.25), (220.0, 0.4)], rate, 0.25, volume)


class Playback:
    """One sound playing on the speaker, in its own thread; stop() cuts it short."""

    def __init__(self, thread: threading.Thread, stop_event: threading.Event, deadline: float = float("inf")):
        self._thread = thread
        self._stop = stop_event
        self.deadline = deadline  # time.monotonic() by which it must have ended
        self._first_sample = threading.Event()
        self._first_sample_at = 0.0
        self.error: Exception | None = None
        self.completed = False

    def mark_first_sample(self) -> None:
        if not self._first_sample.is_set():
            self._first_sample_at = time.perf_counter()
            self._first_sample.set()

    def first_audio_ms(self, started: float, timeout: float = 2.0) -> float:
        """Milliseconds from `started` (a perf_counter() time: the decision to answer) to the
        first block reaching the device (to now, if it has not within `timeout` seconds)."""
        self._first_sample.wait(timeout)
        reached = self._first_sample_at if self._first_sample.is_set() else time.perf_counter()
        return round((reached - started) * 1000, 1)

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()


class Speaker:
    """PortAudio output: plays Sound objects, one at a time, with the device under our control."""

    def __init__(self, device: int | None = None, reference: "PlaybackReference | None" = None):
        self._sd = _sounddevice()
        self._device = device
        self.reference = reference  # told what is played and when, for echo cancellation
        try:
            info = self._sd.query_devices(device, "output")
        except Exception as exc:
            raise UserError(f"no usable speaker ({exc}); connect one, choose one with --output-device, or use --no-speak") from None
        self.name = info["name"]

    def play(self, sound: Sound) -> Playback:
        stop = threading.Event()
        playback: Playback

        def run() -> None:
            block = max(256, sound.rate // 20)
            segment = None
            try:
                with self._sd.OutputStream(device=self._device, samplerate=sound.rate, channels=1, dtype="int16", latency="high") as stream:
                    for start in range(0, len(sound.samples), block):
                        if stop.is_set():
                            stream.abort()  # cut short now, drop what is buffered
                            if segment is not None:
                                self.reference.cut(segment, time.monotonic())
                            return
                        if start == 0 and self.reference is not None:
                            # The first write goes into an empty buffer: it is heard after the
                            # output latency PortAudio reports (bench/barge_in.py measures the rest).
                            segment = self.reference.playing(sound.samples, sound.rate, time.monotonic() + stream.latency)
                        underflowed = stream.write(sound.samples[start : start + block].reshape(-1, 1))
                        if underflowed and segment is not None and start > 0:
                            # The output ran dry before this block (a busy machine): the rest plays
                            # later than stamped, and the echo canceller must align it again.
                            segment = self.reference.resumed(segment, start / sound.rate)
                            log.debug("speaker: the output ran dry before %.2f s of the sound; the echo canceller aligns the rest again", start / sound.rate)
                        playback.mark_first_sample()
                    stream.stop()  # returns once the buffered audio has been played out
                playback.completed = True
            except Exception as exc:  # device gone mid-answer: reported, never fatal
                playback.error = exc
                if segment is not None:
                    self.reference.cut(segment, time.monotonic())
            finally:
                playback.mark_first_sample()

        thread = threading.Thread(target=run, name="speaker", daemon=True)
        playback = Playback(thread, stop, time.monotonic() + sound.duration + PLAYBACK_GRACE_SECONDS)
        thread.start()
        return playback

    def play_and_wait(self, sound: Sound) -> Playback:
        playback = self.play(sound)
        playback.wait()
        return playback
