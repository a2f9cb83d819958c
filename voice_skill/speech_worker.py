"""The speech worker process: pyttsx3 renders text to PCM in memory, one request at a time.

Protocol (over its stdin/stdout, started by speech.Synthesizer):
  request:  one JSON line {"text": ..., "rate": ..., "volume": ..., "voice": ...}
            or {"check_voice": NAME} (the answer has no audio: ok, or an error if there is no such voice)
  response: one JSON line {"status": "ok", "rate": HZ, "bytes": N} and N bytes of int16 PCM,
            or {"status": "error", "detail": ...}
The first line it writes is {"status": "ready"} (or an error if the engine cannot start).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import wave

ATTEMPTS = 3


def render(engine, text: str, rate: int, volume: float, voice: str | None) -> tuple[bytes, int]:
    if not text.strip():
        raise ValueError("nothing to say")
    # Properties go straight to the espeak driver: through pyttsx3's command queue they are
    # applied late, after the text, whenever the previous utterance's end is still pending
    # (seen as a render at the old rate now and then).
    from pyttsx3.drivers import _espeak

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


def choose_voice(engine, voice: str) -> None:
    """Make `voice` the engine's voice; ValueError naming it if espeak-ng has no such voice."""
    from pyttsx3.drivers import _espeak

    _espeak.Synchronize()
    try:
        engine.proxy._driver.setProperty("voice", voice)
    except Exception as exc:
        raise ValueError(f"unknown voice {voice!r}") from exc
    _espeak.Synchronize()


def main() -> int:
    # The protocol gets its own descriptor; anything a library prints goes to stderr.
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)

    def send(header: dict, payload: bytes = b"") -> None:
        protocol.write(json.dumps(header).encode() + b"\n" + payload)

    try:
        import pyttsx3

        engine = pyttsx3.init("espeak")
    except Exception as exc:  # espeak-ng missing, driver broken
        send({"status": "error", "detail": f"speech engine unavailable: {exc}"})
        return 1
    send({"status": "ready"})
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            if "check_voice" in request:
                choose_voice(engine, request["check_voice"])
                send({"status": "ok", "rate": 0, "bytes": 0})
                continue
            pcm, rate = render(engine, request["text"], request["rate"], request["volume"], request.get("voice"))
        except Exception as exc:
            send({"status": "error", "detail": f"{type(exc).__name__}: {exc}"})
            continue
        send({"status": "ok", "rate": rate, "bytes": len(pcm)}, pcm)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
