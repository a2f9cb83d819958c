"""The speech worker process: renders text to PCM in memory, one request at a time, and
renders the next answers ahead while it has nothing else to do.

    python -m voice_skill.speech_worker                              # pyttsx3 (espeak-ng)
    python -m voice_skill.speech_worker --engine piper --model V.onnx  # Piper

Protocol (over its stdin/stdout, started by speech.Synthesizer):
  request:  one JSON line {"text": ..., "rate": ..., "volume": ..., "voice": ...}
            or {"check_voice": NAME} (the answer has no audio: ok, or an error if there is no such voice)
            or {"prepare": [{"text": ..., "rate": ..., "volume": ..., "voice": ...}, ...]}: render
            these ahead when idle (no answer is sent; a newer list replaces what is still waiting)
  response: one JSON line {"status": "ok", "rate": HZ, "bytes": N, "ahead": BOOL} and N bytes of
            int16 PCM ("ahead": it was ready before it was asked for), or {"status": "error", "detail": ...}
The first line it writes is {"status": "ready", "engine": NAME} or, if the engine cannot start,
{"status": "error", "detail": ..., "problem": "engine" | "voice"}.

Renders ahead are kept in memory only (the last few, in a small LRU), like every render.
A request always goes before renders ahead; at most the one render ahead under way when it
arrives is finished first.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import select
import sys
import wave
from collections import OrderedDict
from typing import Protocol

ATTEMPTS = 3
CACHE_SIZE = 8  # renders kept: the next question and tip, the last answer (for "repeat that"), short lines


class Engine(Protocol):
    def render(self, text: str, rate: int, volume: float, voice: str | None) -> tuple[bytes, int]: ...

    def check_voice(self, voice: str) -> None: ...


class Pyttsx3Engine:
    """pyttsx3 with its espeak-ng driver, rendering to an in-memory WAV."""

    def __init__(self):
        import pyttsx3

        self._engine = pyttsx3.init("espeak")

    def render(self, text: str, rate: int, volume: float, voice: str | None) -> tuple[bytes, int]:
        if not text.strip():
            raise ValueError("nothing to say")
        # Properties go straight to the espeak driver: through pyttsx3's command queue they are
        # applied late, after the text, whenever the previous utterance's end is still pending
        # (seen as a render at the old rate now and then).
        from pyttsx3.drivers import _espeak

        engine = self._engine
        _espeak.Synchronize()  # nothing of an earlier utterance is still in espeak-ng's queue
        driver = engine.proxy._driver
        driver.setProperty("rate", int(rate))
        driver.setProperty("volume", float(volume))
        if voice:
            driver.setProperty("voice", voice)
        _espeak.Synchronize()  # ... and the new properties are in force before the text
        # pyttsx3's espeak driver now and then finishes an utterance before any audio reached
        # its buffer (seen about once in ten renders): such an empty render is simply redone.
        for _ in range(ATTEMPTS):
            buffer = io.BytesIO()
            # The espeak driver announces saved files on stdout; that text goes nowhere.
            with contextlib.redirect_stdout(io.StringIO()):
                engine.save_to_file(text, buffer)
                engine.runAndWait()
            _espeak.Synchronize()
            if not buffer.getvalue():
                continue  # the driver never wrote its WAV: the utterance's end event was lost
            buffer.seek(0)
            with wave.open(buffer) as wav:
                pcm, rate = wav.readframes(wav.getnframes()), wav.getframerate()
            if pcm:
                return pcm, rate
        raise RuntimeError(f"pyttsx3 produced no audio in {ATTEMPTS} attempts")

    def check_voice(self, voice: str) -> None:
        """Make `voice` the engine's voice; ValueError naming it if espeak-ng has no such voice."""
        from pyttsx3.drivers import _espeak

        _espeak.Synchronize()
        try:
            self._engine.proxy._driver.setProperty("voice", voice)
        except Exception as exc:
            raise ValueError(f"unknown voice {voice!r}") from exc
        _espeak.Synchronize()


class PiperEngine:
    """A Piper voice (ONNX), loaded once; rate and volume become length_scale and a gain."""

    def __init__(self, model: str):
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        with open(f"{model}.json", encoding="utf-8") as config:
            piper_config = PiperConfig.from_dict(json.load(config))
        # One thread: the listening loop keeps a core of its own while answers are rendered
        # ahead (on 2 cores, under load, one thread also renders as fast as two: 0.9 against 1.2 s).
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        self._voice = PiperVoice(config=piper_config, session=session)
        self._length_scale = float(piper_config.length_scale or 1.0)
        self.render("Hello.", 200, 0.5, None)  # a model that loads but cannot speak fails now, not at the first answer

    def render(self, text: str, rate: int, volume: float, voice: str | None) -> tuple[bytes, int]:
        import numpy as np
        from piper import SynthesisConfig

        from voice_skill.piper_voice import SENTENCE_PAUSE, synthesis_for

        if not text.strip():
            raise ValueError("nothing to say")
        settings = synthesis_for(rate, volume, self._length_scale)
        config = SynthesisConfig(length_scale=settings.length_scale, volume=settings.gain)
        sample_rate = self._voice.config.sample_rate
        pause = np.zeros(int(sample_rate * SENTENCE_PAUSE), dtype=np.int16)
        parts: list = []
        for chunk in self._voice.synthesize(text, config):
            if parts:
                parts.append(pause)
            parts.append(chunk.audio_int16_array)
        if not parts:
            raise RuntimeError("Piper produced no audio")
        return np.concatenate(parts).tobytes(), sample_rate

    def check_voice(self, voice: str) -> None:
        pass  # a Piper voice is its model file, checked when it loaded


class Requests:
    """Request lines from a file descriptor, read without blocking when asked not to wait."""

    def __init__(self, fd: int):
        self._fd = fd
        self._buffer = b""
        self.closed = False

    def read(self, wait: bool) -> list[bytes]:
        """Complete lines available now; with wait=True, blocks until at least one (or EOF)."""
        lines: list[bytes] = []
        while not self.closed:
            if not select.select([self._fd], [], [], None if wait and not lines else 0)[0]:
                break
            data = os.read(self._fd, 1 << 16)
            if not data:
                self.closed = True
                break
            self._buffer += data
            *complete, self._buffer = self._buffer.split(b"\n")
            lines += [line for line in complete if line.strip()]
            if lines:
                wait = False
        return lines


def _key(request: dict) -> tuple:
    return (request["text"], int(request["rate"]), round(float(request["volume"]), 3), request.get("voice"))


class Worker:
    """Serves requests; renders the prepared texts while no request waits."""

    def __init__(self, engine: Engine, send):
        self._engine = engine
        self._send = send
        self._cache: OrderedDict[tuple, tuple[bytes, int]] = OrderedDict()
        self._waiting: list[dict] = []  # texts to render ahead

    def _remember(self, key: tuple, rendered: tuple[bytes, int]) -> None:
        self._cache[key] = rendered
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def handle(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            if "prepare" in request:
                self._waiting = [item for item in request["prepare"] if _key(item) not in self._cache]
                return
            if "check_voice" in request:
                self._engine.check_voice(request["check_voice"])
                self._send({"status": "ok", "rate": 0, "bytes": 0})
                return
            key = _key(request)
            ahead = key in self._cache
            if ahead:
                pcm, rate = self._cache[key]
                self._cache.move_to_end(key)
            else:
                pcm, rate = self._engine.render(request["text"], request["rate"], request["volume"], request.get("voice"))
                self._remember(key, (pcm, rate))
        except Exception as exc:
            self._send({"status": "error", "detail": f"{type(exc).__name__}: {exc}"})
            return
        self._send({"status": "ok", "rate": rate, "bytes": len(pcm), "ahead": ahead}, pcm)

    def render_ahead(self) -> bool:
        """Render one waiting text; False when nothing waits."""
        while self._waiting:
            item = self._waiting.pop(0)
            key = _key(item)
            if key in self._cache:
                continue
            try:
                self._remember(key, self._engine.render(item["text"], item["rate"], item["volume"], item.get("voice")))
            except Exception:
                pass  # asked for for real, it fails again and is reported then
            return True
        return False

    def serve(self, requests: Requests) -> None:
        while not requests.closed:
            for line in requests.read(wait=not self._waiting):
                self.handle(line)
            if not requests.closed:
                self.render_ahead()


def start_engine(args: argparse.Namespace) -> Engine:
    """The engine; raises with a `problem` attribute ("engine" or "voice") when it cannot start."""
    if args.engine == "piper":
        # ONNX Runtime (under Piper) keeps a telemetry database in ~/.cache/Microsoft unless told
        # not to; nothing but the skill's state files may be written, and nothing sent.
        os.environ["ORT_DISABLE_TELEMETRY"] = "1"
        try:
            import piper  # noqa: F401
        except Exception as exc:
            exc.problem = "engine"
            raise
        try:
            return PiperEngine(args.model)
        except Exception as exc:  # a damaged or foreign .onnx, a config that does not fit it
            exc.problem = "voice"
            raise
    return Pyttsx3Engine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voice_skill.speech_worker")
    parser.add_argument("--engine", choices=["pyttsx3", "piper"], default="pyttsx3")
    parser.add_argument("--model", help="the Piper voice (.onnx, with its .onnx.json next to it)")
    args = parser.parse_args(argv)
    # The protocol gets its own descriptor; anything a library prints goes to stderr.
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)

    def send(header: dict, payload: bytes = b"") -> None:
        protocol.write(json.dumps(header).encode() + b"\n" + payload)

    try:
        engine = start_engine(args)
    except Exception as exc:  # espeak-ng missing, driver broken, Piper missing, a bad voice file
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        send({"status": "error", "detail": f"speech engine unavailable: {detail}", "problem": getattr(exc, "problem", "engine")})
        return 1
    send({"status": "ready", "engine": args.engine})
    Worker(engine, send).serve(Requests(sys.stdin.fileno()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
