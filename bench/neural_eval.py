"""Evaluation of the neural wake signal alone, on the evaluation voices (reporting only).

    python3 -m bench.neural_eval [--model PATH] [--voices kal16,slt,rms,awb,joe] [--minutes 20]

Nothing here chooses anything: the threshold is the one stored in the model, picked on DEV
voices by training/train_neural.py (0.5 is also shown, as a fixed reference point). The voices are the flite voices and Piper joe, which no
training or tuning ever used; the ordinary speech is bench/ordinary_sentences.txt and the
run-on lead-ins bench/runon_leadins.txt, which training never read.

Measures (the scorer called as the wake engine calls it: once per phrase, with the phrase
end +- 0.3 s as the range of window ends):
- true accepts (correct intent at or above the threshold): alone in a quiet room, run-on
  (0.05-0.25 s after a lead-in sentence by the same voice), fan noise at 10 and 5 dB SNR;
- false accepts per hour of ordinary speech: every window of long streams of ordinary
  sentences (pauses 0.3-2 s), firings at least 1.5 s apart;
- near misses: bench near misses and held-out near misses, scored at their end.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from bench.audio import EVAL_VOICES, REFERENCE_DBFS, AudioCache, db_to_gain, fan_noise, piper_missing, speech_rms, synthesize
from bench.corpus import BENCH_DIR, NEAR_MISSES, ORDINARY_SENTENCES, RUNON_LEADINS, held_out_near_misses, text_lines
from voice_skill.intents import load_triggers
from voice_skill.recognizers.neural import EMB_SPAN, EMB_STEP, RATE, NeuralDetector

REPO = BENCH_DIR.parent
OUT = BENCH_DIR / "out" / "neural-eval"
CONDITIONS = ("clean", "runon", "fan10", "fan5")


def _fan(n: int, seed: int) -> np.ndarray:
    """n samples of the bench's fan noise (unit RMS)."""
    return fan_noise((n + 2) / RATE, seed)[:n]


def _noisy(audio: np.ndarray, snr: float, level: float, seed: int) -> np.ndarray:
    return (audio + _fan(len(audio), seed) * level / db_to_gain(snr)).astype(np.float32)


def phrase_clip(phrase: np.ndarray, condition: str, lead_in: np.ndarray | None, rng: random.Random) -> tuple[np.ndarray, float]:
    if condition == "runon":
        head = np.concatenate([np.zeros(int(0.5 * RATE), np.float32), lead_in, np.zeros(int(rng.uniform(0.05, 0.25) * RATE), np.float32)])
    else:
        head = np.zeros(int(2.5 * RATE), np.float32)
    audio = np.concatenate([head, phrase, np.zeros(int(0.8 * RATE), np.float32)])
    end = (len(head) + len(phrase)) / RATE
    audio = audio + _fan(len(audio), rng.randrange(1 << 30)) * db_to_gain(-70.0)  # a microphone's floor
    if condition.startswith("fan"):
        audio = _noisy(audio, float(condition[3:]), speech_rms(phrase), rng.randrange(1 << 30))
    return audio.astype(np.float32), end


def stream_windows(detector: NeuralDetector, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every classifier window of a long recording: (end seconds, wake probability per intent)."""
    count = (len(audio) - EMB_SPAN) // EMB_STEP + 1
    end_sample = EMB_SPAN + (count - 1) * EMB_STEP
    emb = detector.embedding.sequence(audio, end_sample, count)
    windows = np.lib.stride_tricks.sliding_window_view(emb, (detector.frames, emb.shape[1]))[:, 0]
    probs = detector.classifier.probabilities(windows)[:, 1:]
    ends = (end_sample - (count - detector.frames - np.arange(len(windows))) * EMB_STEP) / RATE
    return ends, probs


def firings(ends: np.ndarray, score: np.ndarray, threshold: float, refractory: float = 1.5) -> int:
    count, previous = 0, -1e9
    for t in ends[score >= threshold]:
        if t - previous > refractory:
            count += 1
            previous = t
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--voices", default="kal16,slt,rms,awb,joe")
    parser.add_argument("--minutes", type=float, default=20.0, help="ordinary speech per voice... in all")
    parser.add_argument("--stretches", default="0.9,1.0,1.1")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    started = time.monotonic()
    detector = NeuralDetector(args.model)
    threshold = float(detector.thresholds["dev_fa_1_per_hour"])
    cache = AudioCache(args.out / "cache")
    voices = [v for v in EVAL_VOICES if v.name in args.voices.split(",")]
    if piper_missing():
        voices = [v for v in voices if v.engine != "piper"]
        print(f"Piper left out: {piper_missing()}")
    table = load_triggers(REPO / "phrases" / "triggers.toml")
    wake = [(p, intent) for intent in detector.intents for p in table.intents[intent]]
    leadins = text_lines(RUNON_LEADINS)
    stretches = [float(s) for s in args.stretches.split(",")]
    rng = random.Random(args.seed)
    results: dict = {"threshold": threshold, "true_accepts": {}, "scores": {}}
    for voice in voices:
        for condition in CONDITIONS:
            hits, hits_half, correct_scores = [], [], []
            for phrase_text, intent in wake:
                for stretch in stretches:
                    phrase = synthesize(phrase_text, voice, cache, stretch)
                    lead = synthesize(rng.choice(leadins), voice, cache, stretch) if condition == "runon" else None
                    audio, end = phrase_clip(phrase, condition, lead, rng)
                    start = max(0, int((end + 0.3 - 3.0) * RATE))  # the last 3 s, as the wake engine passes
                    evidence = detector.score(audio[start:], (end - 0.3 - start / RATE, end + 0.3 - start / RATE))
                    best = max(evidence.scores, key=evidence.scores.get)
                    hits.append(best == intent and evidence.scores[intent] >= threshold)
                    hits_half.append(best == intent and evidence.scores[intent] >= 0.5)
                    correct_scores.append(evidence.scores[intent])
            results["true_accepts"].setdefault(voice.name, {})[condition] = float(np.mean(hits))
            results["scores"].setdefault(voice.name, {})[condition] = float(np.median(correct_scores))
            results.setdefault("true_accepts_at_0.5", {}).setdefault(voice.name, {})[condition] = float(np.mean(hits_half))
            print(f"{voice.name:6s} {condition:6s} true accepts {np.mean(hits):6.1%} (at 0.5: {np.mean(hits_half):6.1%})  median score {np.median(correct_scores):.3f}", flush=True)
    # near misses, scored at their end
    near = {"bench near misses": list(NEAR_MISSES), "held-out near misses": list(held_out_near_misses())}
    results["near_misses"] = {}
    for name, texts in near.items():
        fired, fired_half, total, which = 0, 0, 0, {}
        for voice in voices:
            for text in texts:
                audio, end = phrase_clip(synthesize(text, voice, cache), "clean", None, rng)
                evidence = detector.score(audio, (end - 0.3, end + 0.3))
                hit = max(evidence.scores.values()) >= threshold
                fired += hit
                fired_half += max(evidence.scores.values()) >= 0.5
                total += 1
                if hit:
                    which[text] = which.get(text, 0) + 1
        results["near_misses"][name] = {"fired": fired, "fired_at_0.5": fired_half, "clips": total, "sentences": which}
        print(f"{name}: {fired}/{total} fire ({fired_half} at 0.5)  {dict(sorted(which.items(), key=lambda kv: -kv[1])[:12])}", flush=True)
    # ordinary speech
    sentences = text_lines(ORDINARY_SENTENCES)
    seconds_total, fa_total, fa_half, worst = 0.0, 0, 0, []
    per_voice_seconds = args.minutes * 60 / max(1, len(voices))
    for voice in voices:
        order = sentences[:]
        rng.shuffle(order)
        parts, seconds = [np.zeros(RATE, np.float32)], 1.0
        for text in order:
            speech = synthesize(text, voice, cache) * db_to_gain(rng.uniform(-6.0, 3.0))
            pause = np.zeros(int(rng.uniform(0.3, 2.0) * RATE), np.float32)
            parts += [speech, pause]
            seconds += (len(speech) + len(pause)) / RATE
            if seconds >= per_voice_seconds:
                break
        audio = np.concatenate(parts)
        audio = audio + _fan(len(audio), rng.randrange(1 << 30)) * db_to_gain(-70.0)
        ends, probs = stream_windows(detector, audio.astype(np.float32))
        wake_score = probs.max(axis=1)
        fa = firings(ends, wake_score, threshold)
        fa_total += fa
        fa_half += firings(ends, wake_score, 0.5)
        seconds_total += len(audio) / RATE
        worst.append(float(wake_score.max()))
        print(f"{voice.name:6s} ordinary speech {len(audio) / RATE / 60:.1f} min: {fa} false accepts (max score {wake_score.max():.3f})", flush=True)
    results["ordinary"] = {"hours": seconds_total / 3600, "false_accepts": fa_total, "per_hour": fa_total / (seconds_total / 3600), "false_accepts_at_0.5": fa_half, "max_scores": worst}
    print(f"ordinary speech: {fa_total} false accepts in {seconds_total / 3600:.2f} h = {fa_total / (seconds_total / 3600):.2f} per hour ({fa_half} at 0.5)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out / 'summary.json'} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
