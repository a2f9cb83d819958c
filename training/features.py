"""Speech-embedding sequences of generated clips, and the classifier windows over them.

Each clip becomes the sequence of 96-dim embeddings (one every 80 ms) that the run-time
scorer computes (``voice_skill.recognizers.neural.SpeechEmbedding.sequence``: the same
function, so training and run time see identical features). A window is ``frames``
consecutive embeddings; it is described by where it ends relative to the nearest wake phrase
end, so the labelling margins can change without recomputing features.
"""

from __future__ import annotations

import hashlib
import os
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data import RATE, Clip
from voice_skill.recognizers.neural import EMB_DIM, EMB_SPAN, EMB_STEP, SpeechEmbedding

OUT = Path(os.environ.get("VOICE_SKILL_TRAINING_OUT", Path(__file__).resolve().parent / "out"))
FEATURES_VERSION = 3


@dataclass
class FeatureSet:
    emb: np.ndarray  # (n_embeddings, 96) float16, all clips one after another
    clip_start: np.ndarray  # (n_clips,) index of each clip's first embedding
    clip_count: np.ndarray  # (n_clips,) embeddings per clip
    clip_kind: np.ndarray  # "alone" | "runon" | "negative"
    clip_voice: np.ndarray
    clip_condition: np.ndarray
    emb_end: np.ndarray  # (n_embeddings,) seconds into its clip where each embedding ends
    emb_event: np.ndarray  # (n_embeddings,) signed seconds from the nearest phrase end (nan: none)
    emb_class: np.ndarray  # (n_embeddings,) class of that phrase (0 if none)
    emb_hard: np.ndarray  # (n_embeddings,) id of a hard negative ending within 0.3 s, else -1
    emb_utt: np.ndarray  # (n_embeddings,) id of any negative utterance ending within 0.3 s, else -1
    hard_text: np.ndarray  # hard negative texts by id

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.npz")
        np.savez(tmp, **self.__dict__)
        tmp.replace(path)

    @staticmethod
    def load(path: Path) -> FeatureSet:
        with np.load(path, allow_pickle=False) as data:
            return FeatureSet(**{k: data[k] for k in data.files})

    def windows(self, frames: int) -> np.ndarray:
        """Index (into emb) of the last embedding of every complete window, all clips."""
        out = [np.arange(s + frames - 1, s + c) for s, c in zip(self.clip_start, self.clip_count)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def gather(self, last: np.ndarray, frames: int) -> np.ndarray:
        """Windows (n, frames, 96) float32 ending at the given embedding indexes."""
        idx = last[:, None] + np.arange(-frames + 1, 1)[None, :]
        return self.emb[idx].astype(np.float32)

    def seconds(self) -> float:
        return float(sum(self.clip_count)) * EMB_STEP / RATE


def clip_embeddings(embedding: SpeechEmbedding, clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Every embedding of the clip whose audio lies inside it, and where each one ends (s)."""
    n = len(clip.audio)
    count = max(1, (n - EMB_SPAN) // EMB_STEP + 1)
    end_sample = EMB_SPAN + (count - 1) * EMB_STEP
    emb = embedding.sequence(clip.audio, end_sample, count)
    ends = (end_sample - (count - 1 - np.arange(count)) * EMB_STEP) / RATE
    return emb, ends


def extract(clips, log_every: float = 60.0) -> FeatureSet:
    embedding = SpeechEmbedding()
    embs, ends, events, classes, hards, utts = [], [], [], [], [], []
    starts, counts, kinds, voices, conditions, hard_text = [], [], [], [], [], []
    total = 0
    next_utt = 0
    last_log = time.monotonic()
    for i, clip in enumerate(clips):
        emb, end = clip_embeddings(embedding, clip)
        event = np.full(len(end), np.nan, dtype=np.float32)
        cls = np.zeros(len(end), dtype=np.int8)
        for at, c in clip.events:
            d = end - at
            closer = np.isnan(event) | (np.abs(d) < np.abs(event))
            event[closer] = d[closer]
            cls[closer] = c
        hard = np.full(len(end), -1, dtype=np.int32)
        for at, text in clip.hard_ends:
            hard[np.abs(end - at) <= 0.3 + 1e-6] = len(hard_text)
            hard_text.append(text)
        utt = np.full(len(end), -1, dtype=np.int32)
        for at in clip.ends:
            utt[np.abs(end - at) <= 0.3 + 1e-6] = next_utt
            next_utt += 1
        starts.append(total)
        counts.append(len(end))
        total += len(end)
        embs.append(emb.astype(np.float16))
        ends.append(end.astype(np.float32))
        events.append(event)
        classes.append(cls)
        hards.append(hard)
        utts.append(utt)
        kinds.append(clip.kind)
        voices.append(clip.voice)
        conditions.append(clip.condition)
        if time.monotonic() - last_log > log_every:
            last_log = time.monotonic()
            print(f"  features: {i + 1} clips, {total * EMB_STEP / RATE / 60:.1f} min of audio", flush=True)
    return FeatureSet(
        emb=np.concatenate(embs) if embs else np.zeros((0, EMB_DIM), np.float16),
        clip_start=np.array(starts, dtype=np.int64),
        clip_count=np.array(counts, dtype=np.int64),
        clip_kind=np.array(kinds),
        clip_voice=np.array(voices),
        clip_condition=np.array(conditions),
        emb_end=np.concatenate(ends),
        emb_event=np.concatenate(events),
        emb_class=np.concatenate(classes),
        emb_hard=np.concatenate(hards),
        emb_utt=np.concatenate(utts),
        hard_text=np.array(hard_text if hard_text else [""]),
    )


def cached(name: str, recipe: dict, make) -> FeatureSet:
    """Features built by make() once per recipe, kept under training/out/features."""
    key = hashlib.sha1(json.dumps({"v": FEATURES_VERSION, **recipe}, sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = OUT / "features" / f"{name}-{key}.npz"
    if path.exists():
        return FeatureSet.load(path)
    started = time.monotonic()
    features = make()
    features.save(path)
    print(f"  {name}: {len(features.clip_count)} clips, {features.seconds() / 60:.1f} min, {time.monotonic() - started:.0f} s -> {path}", flush=True)
    return features
