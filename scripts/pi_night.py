#!/usr/bin/env python3
"""The helper of scripts/pi-emulated-check: a short spoken night, and the checks on what the
skill did with it. Not part of the tests or CI.

    python3 scripts/pi_night.py make DIR [--voice kal16]     # on the host: flite + sox -> DIR/night.wav, night.json, config.toml
    python3 scripts/pi_night.py check-night DIR EVENTS STDERR [--label TEXT]
                                                              # what 'voice-skill run --input DIR/night.wav --no-speak --json' printed
    VENV_PYTHON scripts/pi_night.py speech ENGINE             # pyttsx3 | piper: render in memory, check it is speech

Every check prints one line, "PASS  what (detail)" or "FAIL  what (detail)"; the exit status
is 1 when any check failed. `make` and `check-night` need only the standard library (Python
3.11: tomllib); `speech` runs with the skill's own venv python and imports voice_skill.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tomllib
import wave
from pathlib import Path

RATE = 16000
LEAD = 1.0  # seconds of silence before the first phrase
GAP = 2.5  # seconds between one phrase's end and the next one's start (as tests/test_ritual_cli.py)
TAIL = 2.0
# The night: (what is said, the event it should cause). With --no-speak an answer takes no time,
# so the follow-up window (8 s) opens when the command that asked for it is heard: every
# follow-up is well inside it at a 2.5 s gap. "stop" ends the timed moment (bundled moments
# last 60 to 600 s, chosen by the shuffled bag, so the night cannot wait for "time's up");
# "goodnight" then follows a fresh answer.
NIGHT = [
    ("ask us a question", "say question"),
    ("another one", "say another"),
    ("give us a tip", "say tip, timer"),
    ("stop", "timer_done stopped"),
    ("ask us a question", "say question"),
    ("goodnight", "goodnight"),
    ("ask us a question", "ignored quiet"),
]
# Questions from one category, tips only from the timed moments: any tip drawn is a timed one.
CONFIG = """\
# voice-skill config for scripts/pi-emulated-check: the timed moments on, explicitly.
[content]
moments = true
categories = ["us", "moments"]
"""

results: list[bool] = []


def report(ok: bool, what: str, detail: str = "") -> bool:
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {what}" + (f" ({detail})" if detail else ""), flush=True)
    return ok


# --- make (host) -------------------------------------------------------------------------------


def speech_pcm(text: str, voice: str, work: Path) -> bytes:
    """flite's speech as 16 kHz mono 16-bit PCM (sox converts whatever flite wrote)."""
    raw, pcm = work / "flite.wav", work / "16k.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(raw)], check=True)
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer", str(pcm)], check=True)
    with wave.open(str(pcm)) as w:
        return w.readframes(w.getnframes())


def silence(seconds: float) -> bytes:
    return bytes(2 * int(seconds * RATE))


def cmd_make(args: argparse.Namespace) -> int:
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    parts, spans, t = [silence(LEAD)], [], LEAD
    with tempfile.TemporaryDirectory(prefix="pi-night-") as tmp:
        for i, (text, expect) in enumerate(NIGHT):
            if i:
                parts.append(silence(GAP))
                t += GAP
            pcm = speech_pcm(text, args.voice, Path(tmp))
            spans.append({"text": text, "expect": expect, "start": round(t, 3), "end": round(t + len(pcm) / 2 / RATE, 3)})
            parts.append(pcm)
            t += len(pcm) / 2 / RATE
    parts.append(silence(TAIL))
    with wave.open(str(out / "night.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(parts))
    (out / "night.json").write_text(json.dumps({"voice": args.voice, "seconds": round(t + TAIL, 2), "spans": spans}, indent=1))
    (out / "config.toml").write_text(CONFIG)
    print(f"{out / 'night.wav'}: {t + TAIL:.1f} s, flite voice {args.voice}: " + " / ".join(s["text"] for s in spans))
    return 0


# --- check-night (inside the root) -------------------------------------------------------------


def moment_seconds(repo: Path) -> dict[str, int]:
    pack = tomllib.loads((repo / "phrases" / "tips-moments.toml").read_text("utf-8"))
    return {p["id"]: p["seconds"] for p in pack["phrase"] if "seconds" in p}


def cmd_check_night(args: argparse.Namespace) -> int:
    label = args.label
    night = json.loads((Path(args.dir) / "night.json").read_text())
    spans = night["spans"]
    stdout = Path(args.events).read_text()
    stderr = Path(args.stderr).read_text() if args.stderr else ""
    events, junk = [], []
    for line in stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            junk.append(line)
    if not report(bool(events) and not junk, f"{label}: --json prints only JSON events", f"{len(events)} events" + (f", {len(junk)} other lines: {junk[:2]}" if junk else "")):
        return 1
    report(events[0].get("event") == "listening" and events[-1].get("event") == "done",
           f"{label}: starts with 'listening', ends with 'done'", f"engine {events[0].get('engine')}, done at {events[-1].get('at')} s of {night['seconds']} s")
    if args.expect_signals:
        line = next((ln for ln in stderr.splitlines() if ln.startswith("voice-skill: using")), "")
        report(args.expect_signals in line, f"{label}: the wake engine's start-up line names '{args.expect_signals}'", line.removeprefix("voice-skill: ") or "no 'using' line on stderr")
    errors = [e for e in events if e.get("event") == "error"] + [ln for ln in stderr.splitlines() if "Traceback" in ln or ln.startswith("voice-skill: error")]
    report(not errors, f"{label}: no errors", f"{errors[:2]}" if errors else "")

    def near(span: dict, kind: str) -> list[dict]:
        return [e for e in events if e.get("event") == kind and span["end"] - 0.3 <= e.get("at", -1) <= span["end"] + 1.5]

    used: set[int] = set()
    by_text = {}
    for span in spans:
        heard = near(span, "wake") + near(span, "ignored")
        heard = [e for e in heard if id(e) not in used]
        used.update(id(e) for e in heard)
        want = span["expect"]
        if want == "ignored quiet":
            ok = [(e["event"], e.get("intent"), e.get("reason")) for e in heard] == [("ignored", "question", "quiet")]
        else:
            intent = {"say question": "question", "say another": "another", "say tip, timer": "tip", "timer_done stopped": "stop", "goodnight": "goodnight"}[want]
            ok = [(e["event"], e.get("intent")) for e in heard] == [("wake", intent)]
        what = " + ".join(f"{e['event']} {e.get('intent')}" + (f" ({e['reason']})" if e.get("reason") else "") + f" at {e['at']}" for e in heard) or "nothing"
        report(ok, f"{label}: '{span['text']}' (said {span['start']:.1f}-{span['end']:.1f} s) is heard as {want.split(',')[0].replace('say ', '').replace('timer_done stopped', 'stop').replace('ignored quiet', 'ignored, quiet after goodnight')}", what)
        by_text.setdefault(span["text"], []).append((span, heard))

    says = [e for e in events if e.get("event") == "say"]
    kinds = [(e.get("intent"), e.get("id", "")[:2]) for e in says]
    report(kinds == [("question", "q-"), ("another", "q-"), ("tip", "t-"), ("question", "q-")],
           f"{label}: 'say' events: a question, another question, a tip, a question", ", ".join(f"{e.get('intent')}={e.get('id')}" for e in says))
    seconds = moment_seconds(Path(args.repo))
    tip = next((e for e in says if e.get("intent") == "tip"), None)
    timer = next((e for e in events if e.get("event") == "timer"), None)
    done = next((e for e in events if e.get("event") == "timer_done"), None)
    ok = (tip is not None and timer is not None and timer.get("id") == tip.get("id") and tip.get("id") in seconds
          and timer.get("seconds") == seconds[tip["id"]] and abs(timer.get("at", -1) - tip.get("at", 0)) <= 0.01)
    report(ok, f"{label}: the tip is a timed moment ([content] moments = true): a 'timer' event with its seconds",
           f"tip {tip and tip.get('id')} at {tip and tip.get('at')}, timer {timer}")
    stop_span = spans[3]
    ok = done is not None and done.get("stopped") is True and done.get("id") == (timer or {}).get("id") and stop_span["end"] - 0.3 <= done.get("at", -1) <= stop_span["end"] + 1.5
    report(ok, f"{label}: 'stop' ends the timed moment early: 'timer_done' with stopped true", f"{done}")
    night_end = next((e for e in events if e.get("event") == "goodnight"), None)
    report(night_end is not None and "quiet_until" in night_end, f"{label}: 'goodnight' event, quiet until the morning", f"{night_end}")
    done_event = events[-1]
    report(done_event.get("wakes") == 6, f"{label}: 'done' counts 6 wakes (question, another, tip, stop, question, goodnight)", f"wakes {done_event.get('wakes')}")
    return 1 if not all(results) else 0


# --- speech (inside the root, the skill's venv python) -----------------------------------------


def cmd_speech(args: argparse.Namespace) -> int:
    """Render with the engine the way the skill does (speech.Synthesizer: the speech worker,
    in memory), then check that it is speech: long enough, loud enough, and that the skill's
    own wake engine hears the rendered "Ask us a question." as that phrase."""
    import numpy as np
    import soxr

    from voice_skill.intents import IntentMatcher
    from voice_skill.piper_voice import piper_installed, voice_file
    from voice_skill.recognizers.choose import build_wake_engine, trigger_table
    from voice_skill.settings import RecognitionSettings
    from voice_skill import speech
    from voice_skill.speech import SpeechEngine, Synthesizer, Voice

    name = args.engine
    label = f"speech {name}"
    if name == "piper":
        if not report(piper_installed(), f"{label}: Piper (piper-tts) is installed"):
            return 1
        engine = SpeechEngine("piper", voice_file(None))
    else:
        engine = SpeechEngine()
    question = "From sunrise to sunset, what would your perfect day look like?"
    started = time.monotonic()
    # Generous timeouts: under qemu every instruction is emulated, many times slower than a Pi
    # (the skill's own, 20 s to start and 10 s a render, are for real hardware). The start-up
    # time is reported against the skill's own.
    own_start = speech.START_TIMEOUT_SECONDS
    speech.START_TIMEOUT_SECONDS = max(own_start, args.timeout)
    with Synthesizer(Voice(), timeout=args.timeout, engine=engine) as synth:
        try:
            synth.start()
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            report(False, f"{label}: the speech worker starts", f"{type(exc).__name__}: {exc}")
            return 1
        start_s = time.monotonic() - started
        report(True, f"{label}: the speech worker starts", f"{engine.describe()}, {start_s:.1f} s here; the skill waits up to {own_start:g} s")
        t = time.monotonic()
        sound = synth.render(question)
        render_s = time.monotonic() - t
        wake = synth.render("Ask us a question.")
    x = sound.samples.astype(np.float32) / 32768
    rms = float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0
    # Speech has pauses: a fair share of 20 ms frames well below the loud ones.
    frames = x[: len(x) // (sound.rate // 50) * (sound.rate // 50)].reshape(-1, sound.rate // 50) if len(x) else np.zeros((1, 1))
    energy = np.sqrt(np.mean(np.square(frames), axis=1))
    voiced = float(np.mean(energy > 0.1 * energy.max())) if energy.max() > 0 else 0.0
    report(2.0 <= sound.duration <= 12.0 and rms > 0.005 and 0.3 <= voiced <= 0.98,
           f"{label}: renders a question to memory",
           f"{sound.duration:.2f} s at {sound.rate} Hz, RMS {rms:.3f}, {voiced:.0%} of 20 ms frames voiced, rendered in {render_s:.1f} s")
    # The rendered wake phrase through the skill's wake engine (PocketSphinx, fused): speech
    # that a recognizer hears as the words, not just sound.
    y = wake.samples.astype(np.float32) / 32768
    if wake.rate != RATE:
        y = soxr.resample(y, wake.rate, RATE).astype(np.float32)
    y = y / max(1e-6, float(np.abs(y).max())) * 0.5
    y = np.concatenate([np.zeros(RATE, np.float32), y, np.zeros(2 * RATE, np.float32)])
    pcm = (y * 32767).astype(np.int16).tobytes()
    table = trigger_table(RecognitionSettings())  # the triggers run uses when none are set
    recognizer, matcher = build_wake_engine("fused", table, report=lambda line: None), IntentMatcher(table)
    heard = []
    for i in range(0, len(pcm), 3200):
        heard += recognizer.feed(pcm[i : i + 3200])
    heard += recognizer.finish()
    intents = [intent.kind for h in heard if (intent := matcher.match(h))]
    report(intents == ["question"], f"{label}: the wake engine hears its 'Ask us a question.' as the question phrase", f"heard {intents or 'nothing'}")
    return 1 if not all(results) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make")
    make.add_argument("dir")
    make.add_argument("--voice", default="kal16", help="flite voice (kal16, slt, rms, awb)")
    check = commands.add_parser("check-night")
    check.add_argument("dir")
    check.add_argument("events")
    check.add_argument("stderr", nargs="?")
    check.add_argument("--label", default="night")
    check.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    check.add_argument("--expect-signals", default="", help="text the start-up line on stderr must hold")
    speech = commands.add_parser("speech")
    speech.add_argument("engine", choices=["pyttsx3", "piper"])
    speech.add_argument("--timeout", type=float, default=120.0, help="render timeout in seconds (qemu is slow)")
    args = parser.parse_args(argv)
    return {"make": cmd_make, "check-night": cmd_check_night, "speech": cmd_speech}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
