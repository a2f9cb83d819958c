"""What the neural wake signal costs: load time, memory, CPU per call.

    python3 -m bench.neural_cost [--model PATH] [--calls 50]

Prints the resident memory added by importing and loading the scorer (pyopen-wakeword's
TensorFlow Lite library, the melspectrogram and embedding models, the classifier weights),
the load time, and CPU seconds per ``score`` call made the way the wake engine makes it:
3 s of audio, window ends within +-0.3 s of a speech end (8 windows, 23 embeddings).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args(argv)
    before = rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    from voice_skill.recognizers.neural import NeuralUnavailable, load_detector

    try:
        detector = load_detector(args.model)
    except NeuralUnavailable as exc:
        print(exc)
        return 1
    load_wall, load_cpu = time.perf_counter() - wall, time.process_time() - cpu
    loaded = rss_mb()
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(3 * 16000) * 0.05).astype(np.float32)
    detector.score(audio, (2.4, 3.0))  # first call: buffers
    after_first = rss_mb()
    cpu_times, wall_times = [], []
    for _ in range(args.calls):
        w, c = time.perf_counter(), time.process_time()
        detector.score(audio, (2.4, 3.0))
        cpu_times.append(time.process_time() - c)
        wall_times.append(time.perf_counter() - w)
    print(f"load: {load_wall:.3f} s wall, {load_cpu:.3f} s CPU; RSS {before:.0f} -> {loaded:.0f} MB (+{loaded - before:.0f} MB), after the first call {after_first:.0f} MB (+{after_first - before:.0f} MB)")
    print(f"score (3 s of audio, ends +-0.3 s: {int(0.6 / 0.08) + 1} windows): CPU median {np.median(cpu_times) * 1000:.1f} ms, p90 {np.percentile(cpu_times, 90) * 1000:.1f} ms; wall median {np.median(wall_times) * 1000:.1f} ms over {args.calls} calls")
    print(f"RSS after {args.calls} calls: {rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
