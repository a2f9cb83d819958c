"""Speech synthesis: pyttsx3 (espeak-ng on Linux) or Piper, rendered to PCM in memory.

The engine renders into memory (never a file) inside a small worker process
(speech_worker.py). The worker is what makes synthesis unable to hang the skill: pyttsx3's
event loop has known hangs on Linux, so every render has a timeout, and a worker that misses
it is killed and replaced. The worker also renders the next answers ahead while it is idle
(prepare()), so that an answer starts at once even where Piper is slow (a Raspberry Pi).
Playback is not done here: the caller sends the Sound to the speaker.
"""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice_skill.errors import UserError

from voice_skill.audio import Sound
from voice_skill.state_file import write_atomically

log = logging.getLogger(__name__)

RENDER_TIMEOUT_SECONDS = 10.0
START_TIMEOUT_SECONDS = 20.0


class SpeechError(Exception):
    """Synthesis failed (engine missing, raised, or hung)."""


class UnknownVoice(SpeechError):
    """The engine has no voice of the configured name."""


class EngineUnavailable(SpeechError):
    """The worker could not start its engine: `problem` is "engine" (not installed, broken) or
    "voice" (the voice file would not load)."""

    def __init__(self, detail: str, problem: str = "engine"):
        super().__init__(detail)
        self.problem = problem


ENGINES = ("pyttsx3", "piper")


@dataclass(frozen=True)
class SpeechEngine:
    """Which engine renders: pyttsx3 (espeak-ng, the default) or Piper with a voice file."""

    name: str = "pyttsx3"
    piper_voice: Path | None = None  # the checked .onnx (piper_voice.voice_file), for Piper

    def worker_command(self) -> list[str]:
        command = [sys.executable, "-m", "voice_skill.speech_worker"]
        if self.name == "piper":
            command += ["--engine", "piper", "--model", str(self.piper_voice)]
        return command

    def describe(self) -> str:
        return f"Piper, {self.piper_voice}" if self.name == "piper" else "pyttsx3 (espeak-ng)"


@dataclass(frozen=True)
class Voice:
    """How the skill sounds. Bedtime defaults: slower and softer than pyttsx3's 200 wpm at 1.0."""

    rate: int = 140  # words per minute
    volume: float = 0.6  # 0.0 .. 1.0
    voice: str | None = None  # an espeak-ng voice id, e.g. "gmw/en-us"; None = the default


RATE_STEP, RATE_RANGE = 20, (80, 300)
VOLUME_STEP, VOLUME_RANGE = 0.15, (0.05, 1.0)


def adjusted(voice: Voice, change: str) -> Voice:
    """The voice after "softer", "louder", "slower" or "faster", kept within sane bounds."""
    from dataclasses import replace

    clamp = lambda value, bounds: max(bounds[0], min(bounds[1], value))  # noqa: E731
    if change in ("softer", "louder"):
        step = -VOLUME_STEP if change == "softer" else VOLUME_STEP
        return replace(voice, volume=round(clamp(voice.volume + step, VOLUME_RANGE), 2))
    if change in ("slower", "faster"):
        step = -RATE_STEP if change == "slower" else RATE_STEP
        return replace(voice, rate=int(clamp(voice.rate + step, RATE_RANGE)))
    raise ValueError(change)


class VoiceStore:
    """The voice the couple chose by voice ("speak softer"), kept across restarts.

    A small JSON file in the state folder with rate and volume only. Unreadable or
    unwritable: logged once, the skill goes on with the configured voice.
    """

    def __init__(self, path):
        self.path = path

    def load(self, voice: Voice) -> Voice:
        from dataclasses import replace

        try:
            data = json.loads(self.path.read_bytes())
            rate, volume = data["rate"], data["volume"]
            if not (isinstance(rate, int) and RATE_RANGE[0] <= rate <= RATE_RANGE[1] and isinstance(volume, (int, float)) and 0 <= volume <= 1):
                raise ValueError("out of range")
        except FileNotFoundError:
            return voice
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the saved voice in %s (%s)", self.path, exc)
            return voice
        return replace(voice, rate=rate, volume=float(volume))

    def forget(self) -> bool:
        """Forget the saved voice (the configured one applies again). True if one was saved."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise UserError(f"{self.path}: cannot remove the saved voice ({exc.strerror}); remove it by hand") from None
        return True

    def save(self, voice: Voice) -> None:
        try:
            write_atomically(self.path, json.dumps({"rate": voice.rate, "volume": voice.volume}))
        except OSError as exc:
            log.warning("cannot save the voice to %s (%s); it lasts until the skill restarts", self.path, exc.strerror)


@dataclass(frozen=True)
class Rendered:
    sound: Sound
    ahead: bool  # it was ready when asked for: no render time was spent


class _Deadline(Exception):
    pass


def _read_exactly(stream, size: int, deadline: float) -> bytes:
    chunks, remaining = [], size
    fd = stream.fileno()
    while remaining:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise _Deadline()
        chunk = os.read(fd, min(remaining, 1 << 16))
        if not chunk:
            raise EOFError()
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_line(stream, deadline: float) -> bytes:
    line = bytearray()
    while not line.endswith(b"\n"):
        line += _read_exactly(stream, 1, deadline)
    return bytes(line)


class Synthesizer:
    """Renders text to a Sound through the worker process, with a timeout."""

    def __init__(
        self, voice: Voice = Voice(), timeout: float = RENDER_TIMEOUT_SECONDS, command: list[str] | None = None, engine: SpeechEngine = SpeechEngine(),
    ):
        self.voice = voice
        self.engine = engine
        self._timeout = timeout
        self._command = command or engine.worker_command()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the worker now (start-up cost paid before the first answer)."""
        with self._lock:
            self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        try:
            process = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError as exc:
            raise SpeechError(f"cannot start the speech worker ({exc})") from None
        try:
            header = json.loads(_read_line(process.stdout, time.monotonic() + START_TIMEOUT_SECONDS))
        except (_Deadline, EOFError, ValueError):
            process.kill()
            process.wait()
            raise SpeechError("the speech engine did not start") from None
        if header.get("status") != "ready":
            process.wait()
            raise EngineUnavailable(header.get("detail", "the speech engine did not start"), header.get("problem", "engine"))
        self._process = process

    def _kill_worker(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        self._process = None

    @staticmethod
    def _request(text: str, voice: Voice) -> dict:
        return {"text": text, "rate": voice.rate, "volume": voice.volume, "voice": voice.voice}

    def prepare(self, texts: list[str], voice: Voice | None = None) -> None:
        """Have these rendered ahead, while the worker is idle, in `voice` (else the
        synthesizer's): a later render() of one of them is then ready at once. Never waits,
        never starts a worker, never fails (what cannot be rendered ahead is rendered when asked)."""
        voice = voice or self.voice
        line = json.dumps({"prepare": [self._request(t, voice) for t in texts if t.strip()]}).encode() + b"\n"
        if not self._lock.acquire(timeout=0.05):
            return  # a render is under way; the next prepare comes after it
        try:
            process = self._process
            if process is None or process.poll() is not None:
                return
            # A worker that stopped reading (hung) must not block the listening loop: written
            # only when the pipe takes it at once (select: room for PIPE_BUF bytes, 4 KiB).
            if len(line) > select.PIPE_BUF or not select.select([], [process.stdin], [], 0)[1]:
                return
            try:
                process.stdin.write(line)
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                self._kill_worker()
        finally:
            self._lock.release()

    def render(self, text: str, voice: Voice | None = None) -> Sound:
        return self.rendered(text, voice).sound

    def rendered(self, text: str, voice: Voice | None = None) -> "Rendered":
        """The Sound, and whether the worker had it ready (rendered ahead, or said before)."""
        voice = voice or self.voice
        request = json.dumps(self._request(text, voice)).encode() + b"\n"
        with self._lock:
            self._ensure_worker()
            process = self._process
            deadline = time.monotonic() + self._timeout
            try:
                process.stdin.write(request)
                process.stdin.flush()
                header = json.loads(_read_line(process.stdout, deadline))
                if header.get("status") != "ok":
                    raise SpeechError(header.get("detail", "speech synthesis failed"))
                pcm = _read_exactly(process.stdout, int(header["bytes"]), deadline)
            except _Deadline:
                self._kill_worker()
                raise SpeechError(f"speech synthesis took longer than {self._timeout:g} s and was abandoned") from None
            except (EOFError, BrokenPipeError, OSError, ValueError):
                self._kill_worker()
                raise SpeechError("the speech engine crashed") from None
        return Rendered(Sound(np.frombuffer(pcm, dtype=np.int16).copy(), int(header["rate"])), bool(header.get("ahead", False)))

    def check_voice(self, name: str) -> None:
        """SpeechError unless the engine has a voice of this name."""
        with self._lock:
            self._ensure_worker()
            process = self._process
            try:
                process.stdin.write(json.dumps({"check_voice": name}).encode() + b"\n")
                process.stdin.flush()
                header = json.loads(_read_line(process.stdout, time.monotonic() + self._timeout))
            except (_Deadline, EOFError, BrokenPipeError, OSError, ValueError):
                self._kill_worker()
                raise SpeechError("the speech engine did not answer") from None
        if header.get("status") != "ok":
            raise UnknownVoice(header.get("detail", f"unknown voice {name!r}"))

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                try:
                    self._process.stdin.close()
                    self._process.wait(0.3)  # it ends at once when idle; a render under way is not waited for
                except (OSError, subprocess.TimeoutExpired):
                    self._process.kill()
                    self._process.wait()
            self._process = None

    def __enter__(self) -> "Synthesizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
