"""Speech synthesis: pyttsx3 (espeak-ng on Linux) rendered to PCM in memory.

pyttsx3 renders into an in-memory buffer (never a file) inside a small worker process.
The worker is what makes synthesis unable to hang the skill: pyttsx3's event loop has known
hangs on Linux, so every render has a timeout, and a worker that misses it is killed and
replaced. Playback is not done here: the caller sends the Sound to the speaker.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from dataclasses import dataclass

import numpy as np

from voice_skill.audio import Sound

log = logging.getLogger(__name__)

RENDER_TIMEOUT_SECONDS = 10.0


class SpeechError(Exception):
    """Synthesis failed (engine missing, raised, or hung)."""


@dataclass(frozen=True)
class Voice:
    """How the skill sounds. Bedtime defaults: slower and softer than pyttsx3's 200 wpm at 1.0."""

    rate: int = 140  # words per minute
    volume: float = 0.6  # 0.0 .. 1.0
    voice: str | None = None  # an espeak-ng voice id, e.g. "gmw/en-us"; None = the default


def _render_with_pyttsx3(engine, text: str, voice: Voice) -> tuple[bytes, int]:
    import contextlib
    import io
    import wave

    engine.setProperty("rate", int(voice.rate))
    engine.setProperty("volume", float(voice.volume))
    if voice.voice:
        engine.setProperty("voice", voice.voice)
    buffer = io.BytesIO()
    # The espeak driver announces saved files on stdout; keep that out of our output.
    with contextlib.redirect_stdout(io.StringIO()):
        engine.save_to_file(text, buffer)
        engine.runAndWait()
    if not buffer.getvalue():
        raise SpeechError("pyttsx3 produced no audio")
    buffer.seek(0)
    with wave.open(buffer) as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


def _worker(conn) -> None:  # runs in the worker process
    try:
        import pyttsx3

        engine = pyttsx3.init("espeak")
    except Exception as exc:  # espeak-ng missing, driver broken
        conn.send(("error", f"speech engine unavailable: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        text, voice = request
        try:
            conn.send(("ok", _render_with_pyttsx3(engine, text, voice)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class Synthesizer:
    """Renders text to a Sound through a pyttsx3 worker process, with a timeout."""

    def __init__(self, voice: Voice = Voice(), timeout: float = RENDER_TIMEOUT_SECONDS):
        self.voice = voice
        self._timeout = timeout
        self._context = multiprocessing.get_context("spawn")
        self._process = None
        self._conn = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the worker now (start-up cost paid before the first answer)."""
        with self._lock:
            self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker, args=(child,), name="voice-skill-speech", daemon=True)
        process.start()
        child.close()
        if not parent.poll(self._timeout):
            process.kill()
            raise SpeechError("the speech engine did not start in time")
        try:
            status, detail = parent.recv()
        except EOFError:
            raise SpeechError("the speech engine exited while starting") from None
        if status != "ready":
            process.join(1)
            raise SpeechError(detail)
        self._process, self._conn = process, parent

    def _kill_worker(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join(2)
        self._process = self._conn = None

    def render(self, text: str, voice: Voice | None = None) -> Sound:
        voice = voice or self.voice
        with self._lock:
            self._ensure_worker()
            try:
                self._conn.send((text, voice))
                if not self._conn.poll(self._timeout):
                    self._kill_worker()
                    raise SpeechError(f"speech synthesis took longer than {self._timeout:.0f} s and was abandoned")
                status, payload = self._conn.recv()
            except (EOFError, BrokenPipeError, OSError):
                self._kill_worker()
                raise SpeechError("the speech engine crashed") from None
        if status != "ok":
            raise SpeechError(payload)
        pcm, rate = payload
        return Sound(np.frombuffer(pcm, dtype=np.int16).copy(), rate)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
            if self._process is not None:
                self._process.join(1)
                if self._process.is_alive():
                    self._process.kill()
            self._process = self._conn = None

    def __enter__(self) -> "Synthesizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
