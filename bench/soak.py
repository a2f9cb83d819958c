"""Soak: a simulated night through the real program, as fast as it will go.

    python3 -m bench.soak                 # 8 hours
    python3 -m bench.soak --minutes 10    # the version the tests run

The night: room tone and a steady fan all through, occasional conversation, and a wake
phrase (alternating question and tip, flite voices) every ~10 minutes, about 26 dB above the
fan. It is written to a temporary WAV in blocks (8 hours is about 0.9 GB), fed to
`voice-skill run --input ... --no-speak --json` (with a settings file of its own that turns
the timed moments off), and deleted afterwards. While the program
runs its resident memory is sampled from /proc twice a second.

Prints: wall time, audio hours, real-time factor, wakes answered/expected, false wakes,
peak RSS, and RSS growth (median of the last tenth of the run minus the median of the
third tenth, after warm-up). Targets: every wake answered, growth under 5 MB.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from audio_factory import FLITE_VOICES, fan_noise, flite, rms  # noqa: E402

from bench.corpus import ordinary_sentences  # noqa: E402


def short_sentences() -> list[str]:
    """Ordinary sentences of at most 14 words: the soak's bursts of talk stay about 30 s long
    (the audiobook passages of ordinary_sentences.txt would make them overrun a wake phrase)."""
    return [s for s in ordinary_sentences() if len(s.split()) <= 14]

RATE = 16000
BLOCK_SECONDS = 60.0
ROOM_TONE_DBFS = -62.0
FAN_DBFS = -56.0  # 26 dB below the voice: a quiet fan
SPEECH_DBFS = -30.0
WAKE_EVERY_SECONDS = 600.0
WAKES = [("ask us a question", "question"), ("give us a tip", "tip"), ("ask me a question", "question"), ("give me a tip", "tip")]


@dataclass
class Placed:
    text: str
    intent: str | None
    start: float
    end: float


@dataclass
class Night:
    seconds: float
    wakes: list[Placed] = field(default_factory=list)
    conversation: list[Placed] = field(default_factory=list)


def _at_level(audio: np.ndarray, dbfs: float) -> np.ndarray:
    return audio * (10 ** (dbfs / 20) / (rms(audio[np.abs(audio) > 1e-4]) + 1e-12))


def plan_night(seconds: float, seed: int, wake_every: float = WAKE_EVERY_SECONDS) -> Night:
    """Where the wake phrases and the conversation go (pure; deterministic for a seed)."""
    rng = random.Random(seed)
    night = Night(seconds)
    t = 30.0
    index = 0
    while t + 5 < seconds:
        night.wakes.append(Placed(*WAKES[index % len(WAKES)], t, t))  # end filled in when rendered
        index += 1
        t += wake_every + rng.uniform(-0.1, 0.1) * wake_every
    sentences = short_sentences()
    t = 120.0
    while t + 40 < seconds:
        if all(abs(t - w.start) > 45 and abs(t + 30 - w.start) > 45 for w in night.wakes):
            night.conversation.append(Placed(rng.choice(sentences), None, t, t))
        t += rng.uniform(150, 420)
    return night


def write_night(night: Night, path: Path, cache: Path, seed: int) -> None:
    """Render the night to a 16 kHz WAV, block by block; fills in where each utterance ends."""
    rng = random.Random(seed + 1)
    speech: list[tuple[Placed, np.ndarray]] = []
    for i, wake in enumerate(night.wakes):
        audio = _at_level(flite(wake.text, FLITE_VOICES[i % len(FLITE_VOICES)], cache), SPEECH_DBFS)
        wake.end = wake.start + len(audio) / RATE
        speech.append((wake, audio))
    sentences = short_sentences()
    for talk in night.conversation:
        parts = [_at_level(flite(rng.choice(sentences), rng.choice(FLITE_VOICES), cache), SPEECH_DBFS + rng.uniform(-6, 3)) for _ in range(rng.randint(3, 8))]
        audio = np.concatenate([np.concatenate([p, np.zeros(int(RATE * rng.uniform(0.4, 1.2)), np.float32)]) for p in parts])
        talk.end = talk.start + len(audio) / RATE
        speech.append((talk, audio))
    tone_rng = np.random.default_rng(seed)
    block = int(BLOCK_SECONDS * RATE)
    total = int(night.seconds * RATE)
    with soundfile.SoundFile(str(path), "w", RATE, 1, "PCM_16") as out:
        for start in range(0, total, block):
            n = min(block, total - start)
            fan = fan_noise(n / RATE, seed=start // block)[:n] * 10 ** (FAN_DBFS / 20)
            tone = tone_rng.standard_normal(n).astype(np.float32) * 10 ** (ROOM_TONE_DBFS / 20)
            mix = fan + tone
            for placed, audio in speech:
                a, b = int(placed.start * RATE), int(placed.start * RATE) + len(audio)
                lo, hi = max(a, start), min(b, start + n)
                if lo < hi:
                    mix[lo - start : hi - start] += audio[lo - a : hi - a]
            out.write(np.clip(mix, -1, 1))


@dataclass
class SoakResult:
    audio_hours: float
    wall_seconds: float
    cpu_seconds: float
    real_time_factor: float
    wakes_expected: int
    wakes_answered: int
    false_wakes: int
    peak_rss_mb: float
    rss_growth_mb: float
    exit_code: int


def _rss_kb(pid: int, field: str = "VmRSS") -> int | None:
    """A process's resident memory now (VmRSS) or its peak so far (VmHWM), in kB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run_night(night: Night, wav: Path, env: dict | None = None) -> SoakResult:
    import resource

    config = wav.with_name("soak-config.toml")  # its own settings: no timed moment keeps the skill quiet through a wake phrase
    config.write_text("[content]\nmoments = false\n", encoding="utf-8")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "voice_skill", "run", "--input", str(wav), "--no-speak", "--json", "-q", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    )
    samples: list[int] = []
    peaks: list[int] = []

    def sample() -> None:
        while process.poll() is None:
            kb, high = _rss_kb(process.pid), _rss_kb(process.pid, "VmHWM")
            if kb:
                samples.append(kb)
            if high:
                peaks.append(high)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    sampler.join(2)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    wakes = [e for e in events if e["event"] == "wake"]
    answered, matched = 0, set()
    for wake in night.wakes:
        hit = next((i for i, e in enumerate(wakes) if i not in matched and e["intent"] == wake.intent and wake.start <= e["at"] <= wake.end + 1.5), None)
        if hit is not None:
            matched.add(hit)
            answered += 1
    tenth = max(1, len(samples) // 10)
    growth = (statistics.median(samples[-tenth:]) - statistics.median(samples[2 * tenth : 3 * tenth] or samples)) / 1024 if samples else float("nan")
    # The child's own high-water mark: RUSAGE_CHILDREN's ru_maxrss is the largest child this
    # process ever waited for (under pytest, another test's), not this one's.
    peak = max(max(peaks, default=0), max(samples, default=0)) / 1024
    if process.returncode != 0:
        print(err, file=sys.stderr)
    return SoakResult(
        audio_hours=night.seconds / 3600, wall_seconds=round(wall, 1), cpu_seconds=round(cpu, 1),
        real_time_factor=round(cpu / night.seconds, 4), wakes_expected=len(night.wakes), wakes_answered=answered,
        false_wakes=len(wakes) - len(matched), peak_rss_mb=round(peak, 1), rss_growth_mb=round(growth, 2),
        exit_code=process.returncode,
    )


def soak(minutes: float, seed: int = 7, wake_every: float = WAKE_EVERY_SECONDS, cache: Path | None = None, workdir: Path | None = None) -> SoakResult:
    cache = cache or REPO / "bench" / "out" / "cache"
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        wav = Path(tmp) / "night.wav"
        night = plan_night(minutes * 60, seed, wake_every)
        write_night(night, wav, cache, seed)
        return run_night(night, wav)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8 * 60, help="length of the night (default: 480)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--wake-every", type=float, default=WAKE_EVERY_SECONDS, help="seconds between wake phrases (default: 600)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = soak(args.minutes, args.seed, args.wake_every)
    if args.json:
        print(json.dumps(asdict(result)))
    else:
        for key, value in asdict(result).items():
            print(f"{key:18s} {value}")
        ok = result.wakes_answered == result.wakes_expected and result.rss_growth_mb < 5 and result.exit_code == 0
        print(f"{'verdict':18s} {'PASS' if ok else 'FAIL'} (every wake answered, RSS growth under 5 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
