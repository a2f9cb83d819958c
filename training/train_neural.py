"""Train the neural wake signal and write voice_skill/data/wake_neural.npz.

    python3 -m training.train_neural              # the committed model (about 40 min on a shared core)
    python3 -m training.train_neural --tiny       # a few voices and phrases, seconds; writes to a temp dir

Everything is seeded: the same command on the same machine rebuilds the same weights (numpy
on one BLAS thread; the speech embedding runs single-threaded through TensorFlow Lite's
XNNPACK delegate). Generated audio and features are cached under training/out/ (git-ignored).

Only TRAIN voices (training/voices.py) are learned from. The epoch and every threshold are
chosen on DEV voices and dev text; the evaluation voices (flite, Piper) are never used here.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: one thread, reproducible sums
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from training import data as D  # noqa: E402
from training.features import FeatureSet, cached, extract  # noqa: E402
from training.voices import DEV, TRAIN  # noqa: E402
from voice_skill.recognizers.neural import DEFAULT_MODEL, EMB_DIM, EMB_STEP, MODEL_FORMAT, RATE  # noqa: E402

MODEL_CARD = DEFAULT_MODEL.with_suffix(".md")  # written by hand from the run's report


@dataclass(frozen=True)
class TrainSpec:
    seed: int = 1
    frames: int = 16
    hidden: tuple[int, ...] = (256, 64)
    epochs: int = 16
    batch: int = 512
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.5  # on the hidden layers
    input_noise: float = 0.5  # gaussian noise on standardised inputs
    positive_weight: float = 4.0  # loss weight of a wake window relative to a "none" window
    hard_weight: float = 2.0  # loss weight of windows that end near a generated hard negative
    pos_range: tuple[float, float] = (-0.04, 0.45)  # window end minus phrase end: a wake window
    ignore_before: float = 0.25  # windows ending up to this long before the phrase end: not trained
    ignore_after: float = 1.0  # windows ending between pos_range[1] and this after it: not trained
    label_smoothing: float = 0.05  # targets (1 - e) one-hot + e / classes: keeps probabilities off 0 and 1
    target_fa_per_hour: float = 1.0  # dev operating point: false accepts per hour of dev negatives
    refractory: float = 1.5  # seconds: one false accept per this much time at most


# ------------------------------------------------------------------------------ labels


def labels(fs: FeatureSet, spec: TrainSpec) -> np.ndarray:
    """Per embedding (as a window's last): class index, or -1 to leave out of training."""
    d = fs.emb_event
    out = np.zeros(len(d), dtype=np.int8)
    has = ~np.isnan(d)
    lo, hi = spec.pos_range
    pos = has & (d >= lo) & (d <= hi)
    ignore = has & (((d > -spec.ignore_before) & (d < lo)) | ((d > hi) & (d < spec.ignore_after)))
    out[pos] = fs.emb_class[pos]
    out[ignore] = -1
    return out


# ------------------------------------------------------------------------------ the MLP


class MLP:
    def __init__(self, sizes: list[int], rng: np.random.Generator):
        self.w = [(rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(b, dtype=np.float32) for b in sizes[1:]]

    def forward(self, x: np.ndarray, dropout: float = 0.0, rng: np.random.Generator | None = None):
        acts, masks = [x], []
        for i, (w, b) in enumerate(zip(self.w, self.b)):
            x = x @ w + b
            if i < len(self.w) - 1:
                x = np.maximum(x, 0.0)
                if dropout and rng is not None:
                    mask = (rng.random(x.shape, dtype=np.float32) >= dropout).astype(np.float32) / (1 - dropout)
                    x = x * mask
                    masks.append(mask)
                else:
                    masks.append(None)
                acts.append(x)
        return x, acts, masks

    def probabilities(self, x: np.ndarray, chunk: int = 8192) -> np.ndarray:
        out = []
        for i in range(0, len(x), chunk):
            logits, _, _ = self.forward(x[i : i + chunk])
            logits = logits - logits.max(axis=1, keepdims=True)
            e = np.exp(logits)
            out.append(e / e.sum(axis=1, keepdims=True))
        return np.concatenate(out) if out else np.zeros((0, len(self.b[-1])), np.float32)


class Adam:
    def __init__(self, params: list[np.ndarray], lr: float, weight_decay: float):
        self.params, self.lr, self.wd = params, lr, weight_decay
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        self.t += 1
        b1, b2 = 0.9, 0.999
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            if p.ndim == 2:
                g = g + self.wd * p
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            mhat = m / (1 - b1**self.t)
            vhat = v / (1 - b2**self.t)
            p -= (lr * mhat / (np.sqrt(vhat) + 1e-8)).astype(np.float32)


def train_step(model: MLP, opt: Adam, x: np.ndarray, y: np.ndarray, sw: np.ndarray, spec: TrainSpec, rng: np.random.Generator, lr: float) -> float:
    logits, acts, masks = model.forward(x, spec.dropout, rng)
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    p = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    loss = float(-(np.log(p[np.arange(n), y] + 1e-12) * sw).sum() / sw.sum())  # (reported without smoothing)
    target = np.full_like(p, spec.label_smoothing / p.shape[1])
    target[np.arange(n), y] += 1.0 - spec.label_smoothing
    grad = p - target
    grad *= (sw / sw.sum())[:, None]
    gw, gb = [None] * len(model.w), [None] * len(model.b)
    for i in range(len(model.w) - 1, -1, -1):
        gw[i] = acts[i].T @ grad
        gb[i] = grad.sum(axis=0)
        if i > 0:
            grad = grad @ model.w[i].T
            grad *= acts[i] > 0
            if masks[i - 1] is not None:
                grad *= masks[i - 1]
    opt.step(gw + gb, lr)
    return loss


# ------------------------------------------------------------------------------ dev metrics


def window_scores(model: MLP, fs: FeatureSet, mean, std, frames: int) -> tuple[np.ndarray, np.ndarray]:
    last = fs.windows(frames)
    x = (fs.gather(last, frames).reshape(len(last), -1) - mean) / std
    return last, model.probabilities(x)


def false_accept_events(fs: FeatureSet, last: np.ndarray, score: np.ndarray, threshold: float, refractory: float, clips: np.ndarray) -> int:
    """Separate firings (windows above threshold more than `refractory` s apart) in the given clips."""
    count = 0
    clip_of = np.searchsorted(fs.clip_start, last, side="right") - 1
    for c in clips:
        sel = clip_of == c
        t = fs.emb_end[last[sel]]
        above = t[score[sel] >= threshold]
        previous = -1e9
        for at in above:
            if at - previous > refractory:
                count += 1
                previous = at
    return count


def evaluate(model: MLP, fs: FeatureSet, mean, std, spec: TrainSpec, threshold: float | None = None) -> dict:
    """Dev metrics. Positives: max over windows ending within 0.3 s of the phrase end (what the
    run-time caller asks), per intent, correct intent above threshold. False accepts: firings per
    hour over every window of the dev streams of ordinary sentences; near misses: share of
    generated hard negatives (their own streams) with a window ending within 0.3 s of their end
    above threshold. Without a threshold: the lowest one at target_fa_per_hour."""
    last, probs = window_scores(model, fs, mean, std, spec.frames)
    wake = probs[:, 1:].max(axis=1)
    clip_of = np.searchsorted(fs.clip_start, last, side="right") - 1
    neg_clips = np.flatnonzero((fs.clip_kind == "negative") & (fs.clip_condition == "ordinary"))
    neg_sel = np.isin(clip_of, neg_clips)
    hours = float(fs.clip_count[neg_clips].sum()) * EMB_STEP / RATE / 3600
    # positives: per clip, the best window near the phrase end
    near = ~np.isnan(fs.emb_event[last]) & (np.abs(fs.emb_event[last]) <= 0.3 + 1e-6)
    pos_clip, pos_best, pos_cls = [], [], []
    for c in np.flatnonzero(fs.clip_kind != "negative"):
        sel = (clip_of == c) & near
        if not sel.any():
            continue
        cls = int(fs.emb_class[last[sel]][0])
        p = probs[sel]
        pos_clip.append(c)
        pos_best.append(float(p[:, cls].max()))
        pos_cls.append(cls)
    pos_clip, pos_best = np.array(pos_clip), np.array(pos_best)
    if threshold is None:
        # the lowest threshold with at most target_fa_per_hour firings per hour on dev negatives
        allowed_events = int(round(spec.target_fa_per_hour * hours))  # 1 in the 0.96 h of dev ordinary speech
        candidates = np.unique(np.round(np.concatenate([wake[neg_sel], [0.5, 0.999999]]), 6))
        candidates = candidates[candidates >= 0.05]
        lo_i, hi_i = 0, len(candidates) - 1
        while lo_i < hi_i:  # firings decrease as the threshold rises
            mid = (lo_i + hi_i) // 2
            if false_accept_events(fs, last, wake, candidates[mid] + 1e-7, spec.refractory, neg_clips) <= allowed_events:
                hi_i = mid
            else:
                lo_i = mid + 1
        threshold = float(candidates[lo_i] + 1e-7)
    events = false_accept_events(fs, last, wake, threshold, spec.refractory, neg_clips)
    ordinary_events = 0
    hard_ids = fs.emb_hard[last]
    hard_hit = {}
    for h in np.unique(hard_ids[hard_ids >= 0]):
        hard_hit[int(h)] = bool(wake[hard_ids == h].max() >= threshold)
    accepted = pos_best >= threshold
    per_voice = {}
    per_condition = {}
    for c, ok in zip(pos_clip, accepted):
        per_voice.setdefault(str(fs.clip_voice[c]), []).append(ok)
        cond = str(fs.clip_condition[c]) or str(fs.clip_kind[c])
        per_condition.setdefault(cond, []).append(ok)
    del ordinary_events
    return {
        "threshold": threshold,
        "true_accepts": float(accepted.mean()) if len(accepted) else float("nan"),
        "per_voice": {k: float(np.mean(v)) for k, v in sorted(per_voice.items())},
        "per_condition": {k: float(np.mean(v)) for k, v in sorted(per_condition.items())},
        "fa_per_hour": events / hours if hours else float("nan"),
        "negative_hours": hours,
        "near_miss_rate": float(np.mean(list(hard_hit.values()))) if hard_hit else float("nan"),
        "near_misses": len(hard_hit),
        "auc_like": float(np.mean(pos_best[:, None] > wake[neg_sel][None, :: max(1, int(neg_sel.sum() // 4000))])) if len(pos_best) else float("nan"),
    }


# ------------------------------------------------------------------------------ data


def train_features(data_spec: D.DataSpec) -> FeatureSet:
    recipe = {k: (sorted(v) if isinstance(v, dict) else v) for k, v in asdict(data_spec).items()}
    recipe["voices"] = [v.key for v in data_spec.voices]
    recipe["texts"] = D.text_fingerprint(data_spec.split)
    return cached("train", recipe, lambda: extract(D.generate(data_spec)))


def dev_features(minutes: float = 60.0, hard_minutes: float = 15.0, voices=DEV, renditions=(0.9, 1.1), phrases=None) -> FeatureSet:
    recipe = {"dev": 3, "minutes": minutes, "hard_minutes": hard_minutes, "voices": [v.key for v in voices], "renditions": list(renditions), "phrases": phrases, "texts": D.text_fingerprint("dev")}
    return cached("dev", recipe, lambda: extract(D.dev_clips(negative_minutes=minutes, hard_minutes=hard_minutes, voices=voices, renditions=renditions, phrases=phrases)))


# ------------------------------------------------------------------------------ training


def fit(train: FeatureSet, dev: FeatureSet, spec: TrainSpec, log=print):
    rng = np.random.default_rng(spec.seed)
    y_all = labels(train, spec)
    last = train.windows(spec.frames)
    y = y_all[last].astype(np.int64)
    keep = y >= 0
    last, y = last[keep], y[keep]
    hard = train.emb_hard[last] >= 0
    sw = np.where(y > 0, spec.positive_weight, np.where(hard, spec.hard_weight, 1.0)).astype(np.float32)
    sample = train.gather(last[rng.choice(len(last), min(len(last), 50000), replace=False)], spec.frames).reshape(-1, spec.frames * EMB_DIM)
    mean = sample.mean(axis=0).astype(np.float32)
    std = (sample.std(axis=0) + 1e-3).astype(np.float32)
    del sample
    model = MLP([spec.frames * EMB_DIM, *spec.hidden, len(D.CLASSES)], rng)
    opt = Adam(model.w + model.b, spec.lr, spec.weight_decay)
    log(f"  training windows: {len(y)} ({int((y > 0).sum())} wake, {int(hard.sum())} near hard negatives)")
    best = None
    history = []
    steps_per_epoch = int(np.ceil(len(y) / spec.batch))
    for epoch in range(1, spec.epochs + 1):
        started = time.monotonic()
        order = rng.permutation(len(y))
        losses = []
        for s in range(steps_per_epoch):
            idx = order[s * spec.batch : (s + 1) * spec.batch]
            x = (train.gather(last[idx], spec.frames).reshape(len(idx), -1) - mean) / std
            if spec.input_noise:
                x = x + rng.standard_normal(x.shape, dtype=np.float32) * spec.input_noise
            progress = ((epoch - 1) * steps_per_epoch + s) / (spec.epochs * steps_per_epoch)
            lr = spec.lr * 0.5 * (1 + np.cos(np.pi * progress))  # cosine decay
            losses.append(train_step(model, opt, x.astype(np.float32), y[idx], sw[idx], spec, rng, lr))
        metrics = evaluate(model, dev, mean, std, spec)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), **{k: metrics[k] for k in ("threshold", "true_accepts", "fa_per_hour", "near_miss_rate", "auc_like")}})
        log(f"  epoch {epoch:2d}: loss {np.mean(losses):.4f}  dev: true accepts {metrics['true_accepts']:.3f} at {metrics['fa_per_hour']:.2f}/h (threshold {metrics['threshold']:.3f}), near misses {metrics['near_miss_rate']:.3f}, auc {metrics['auc_like']:.4f}  ({time.monotonic() - started:.0f} s)")
        score = metrics["true_accepts"] - 0.5 * metrics["near_miss_rate"]
        if best is None or score > best[0]:
            best = (score, epoch, [w.copy() for w in model.w], [b.copy() for b in model.b], metrics)
    _, epoch, ws, bs, metrics = best
    model.w, model.b = ws, bs
    return model, mean, std, epoch, metrics, history


def export(path: Path, model: MLP, mean, std, spec: TrainSpec, meta_extra: dict) -> None:
    meta = {
        "format": MODEL_FORMAT,
        "classes": list(D.CLASSES),
        "frames": spec.frames,
        "layers": len(model.w),
        **meta_extra,
    }
    arrays = {"meta": np.array(json.dumps(meta, sort_keys=True)), "mean": mean.astype(np.float16), "std": std.astype(np.float16)}
    for i, (w, b) in enumerate(zip(model.w, model.b)):
        arrays[f"w{i}"] = w.astype(np.float16)
        arrays[f"b{i}"] = b.astype(np.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def rounded(model: MLP, mean, std) -> tuple[MLP, np.ndarray, np.ndarray]:
    """The model as exported (float16 weights), for measuring what ships."""
    out = MLP.__new__(MLP)
    out.w = [w.astype(np.float16).astype(np.float32) for w in model.w]
    out.b = [b.astype(np.float16).astype(np.float32) for b in model.b]
    return out, mean.astype(np.float16).astype(np.float32), std.astype(np.float16).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few voices and phrases: seconds; writes to a temp dir unless --out")
    parser.add_argument("--out", type=Path, help=f"weights file (default: {DEFAULT_MODEL} or a temp file with --tiny)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int)
    args = parser.parse_args(argv)
    started = time.monotonic()
    spec = TrainSpec(seed=args.seed)
    if args.tiny:
        data_spec = D.DataSpec.tiny(seed=args.seed)
        spec = replace(spec, hidden=(32,), epochs=3)
        dev = dev_features(minutes=0.3, hard_minutes=0.15, voices=DEV[0:1], renditions=(1.0,), phrases=D.TINY_PHRASES)
        out = args.out or Path(tempfile.mkdtemp(prefix="wake-neural-")) / "wake_neural.npz"
    else:
        data_spec = D.DataSpec(seed=args.seed)
        dev = None
        out = args.out or DEFAULT_MODEL
    if args.epochs:
        spec = replace(spec, epochs=args.epochs)
    print(f"train data: {len(data_spec.voices)} voices, seed {data_spec.seed}", flush=True)
    train = train_features(data_spec)
    if dev is None:
        dev = dev_features()
    print(f"train: {train.seconds() / 3600:.2f} h in {len(train.clip_count)} clips; dev: {dev.seconds() / 3600:.2f} h in {len(dev.clip_count)} clips", flush=True)
    model, mean, std, epoch, metrics, history = fit(train, dev, spec, log=lambda m: print(m, flush=True))
    shipped, smean, sstd = rounded(model, mean, std)
    metrics = evaluate(shipped, dev, smean, sstd, spec)
    meta = {
        "thresholds": {"dev_fa_1_per_hour": round(metrics["threshold"], 6)},
        "epoch": epoch,
        "seed": spec.seed,
        "train": asdict(spec) | {"data_seed": data_spec.seed, "positives_per_phrase": data_spec.positives_per_phrase, "negative_minutes": data_spec.negative_minutes, "voices": len(data_spec.voices)},
    }
    export(out, shipped, smean, sstd, spec, meta)
    print(f"chosen epoch {epoch}; dev (shipped weights): true accepts {metrics['true_accepts']:.3f} at {metrics['fa_per_hour']:.2f}/h, threshold {metrics['threshold']:.4f}", flush=True)
    print(json.dumps({k: v for k, v in metrics.items()}, indent=1))
    report = {"metrics": metrics, "history": history, "epoch": epoch, "spec": asdict(spec), "data": {"train_hours": train.seconds() / 3600, "dev_hours": dev.seconds() / 3600, "train_clips": int(len(train.clip_count)), "dev_clips": int(len(dev.clip_count))}}
    report_path = out.with_suffix(".dev.json") if args.tiny or args.out else D.TRAINING_DIR / "out" / "wake_neural.dev.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=1))
    print(f"wrote {out} ({out.stat().st_size // 1024} KB) and {report_path} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
