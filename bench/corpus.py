"""The benchmark corpus: long WAV files and a manifest of what was said where.

    python3 -m bench.corpus [--quick] [--seed N] [--out DIR]     # build only

Files (16 kHz mono), each a single program run so start-up is paid once per file:
- triggers-CONDITION-VOICE.wav: every wake phrase (intents question and tip) in a few takes,
  interleaved with near misses, 2.5-4 s apart, in one condition (clean, soft, reverb, fan
  noise at 10 and 5 dB, tempo 0.9 and 1.1) and one voice (four flite voices, espeak-ng);
- ordinary-VOICE.wav: television and conversation (bench/ordinary_sentences.txt) with
  natural pauses and levels, no wake phrase, at least `ordinary_minutes` in all;
- night.wav: a long quiet bedroom (low room tone) with a few phrases at known times.

Everything is a function of the seed: the same seed gives the same manifest and audio.
"""

from __future__ import annotations

import argparse
import json
import random
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.audio import (
    RATE,
    REFERENCE_DBFS,
    VOICES,
    AudioCache,
    Voice,
    db_to_gain,
    room_noise,
    sox,
    synthesize,
    voice_named,
    write_wav,
)
from bench.manifest import (
    NEAR_MISS,
    NIGHT_FILE,
    ORDINARY,
    ORDINARY_FILE,
    TRIGGER,
    TRIGGERS_FILE,
    AudioFile,
    Manifest,
    Span,
)

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "out"
ORDINARY_SENTENCES = BENCH_DIR / "ordinary_sentences.txt"
WAKE_INTENTS = ("question", "tip")

NEAR_MISSES = (
    # from the issue
    "ask him a question",
    "i have a question",
    "give it a tip",
    "tell us a story",
    # sharing words or sounds with the wake phrases
    "ask her a question",
    "ask them a question",
    "ask me anything",
    "ask us anything",
    "that's a good question",
    "i'll give you a tip",
    "here's a tip",
    "give him a tip",
    "give us a hand",
    "give us a minute",
    "give me a minute",
    "give us a break",
    "give me a kiss",
    "tell us a joke",
    "tell me a secret",
    "tell us the time",
    "ask us a riddle",
    "give us a clue",
    # not in the program's decoy list either: how the program does on sentences nobody
    # told it about (the table counts near misses outside the decoy list apart)
    "give us a lift",
    "give me a call",
    "tell us a lie",
    "give it a rest",
    "ask us something",
    "give us a kick",
)


@dataclass(frozen=True)
class Condition:
    name: str
    gain_db: float = 0.0  # speech level relative to a normal voice
    effects: tuple[str, ...] = ()  # sox effects on each utterance
    pad: float = 0.0  # seconds of silence after the speech for an effect's tail (reverb)
    snr_db: float | None = None  # fan noise under the whole file, relative to a normal voice


CONDITIONS = (
    Condition("clean"),
    Condition("soft", gain_db=-18.0),
    Condition("reverb", effects=("reverb", "50", "50", "30", "100", "5"), pad=0.8),
    Condition("fan10", snr_db=10.0),
    Condition("fan5", snr_db=5.0),
    Condition("tempo0.9", effects=("tempo", "-s", "0.9")),
    Condition("tempo1.1", effects=("tempo", "-s", "1.1")),
)
CLEAN = CONDITIONS[0]


def condition_named(name: str) -> Condition:
    for condition in CONDITIONS:
        if condition.name == name:
            return condition
    raise KeyError(f"unknown condition {name!r}; known: {', '.join(c.name for c in CONDITIONS)}")


@dataclass(frozen=True)
class CorpusSpec:
    conditions: tuple[str, ...] = tuple(c.name for c in CONDITIONS)
    voices: tuple[str, ...] = tuple(v.name for v in VOICES)
    renditions: int = 2  # takes of each wake phrase per file (the first at normal speed)
    near_misses_per_file: int = 6  # drawn in rotation from near_misses
    near_misses: tuple[str, ...] = NEAR_MISSES
    ordinary_minutes: float = 20.0  # at least this much; 0: no ordinary-speech files
    night_minutes: float = 25.0  # 0: no night file
    night_phrases: int = 18  # wake phrases and near misses (2:1) spread over the night

    @staticmethod
    def quick() -> CorpusSpec:
        return CorpusSpec(
            conditions=("clean", "fan10"),
            voices=("slt", "espeak"),
            renditions=1,
            near_misses_per_file=4,
            ordinary_minutes=3.0,
            night_minutes=4.0,
            night_phrases=3,
        )


@dataclass(frozen=True)
class Layout:
    """Timing of a sequence of utterances (seconds)."""

    lead: float = 1.5
    gap: tuple[float, float] = (2.5, 4.0)  # from the end of one utterance to the next
    tail: float = 3.0
    long_pause_chance: float = 0.0  # now and then a longer pause instead of a gap
    long_pause: tuple[float, float] = (3.0, 8.0)

    def pause(self, rng: random.Random) -> float:
        if self.long_pause_chance and rng.random() < self.long_pause_chance:
            return rng.uniform(*self.long_pause)
        return rng.uniform(*self.gap)


TRIGGER_LAYOUT = Layout()
ORDINARY_LAYOUT = Layout(lead=1.0, gap=(0.3, 2.0), tail=2.0, long_pause_chance=0.15)
ORDINARY_LEVEL_DB = (-6.0, 3.0)  # television and people vary in level
# Every file has a noise floor: a microphone never delivers exact digital silence, and
# PocketSphinx's endpointer can stay "in speech" through all-zero frames (see README).
MIC_FLOOR_DBFS = -75.0  # a quiet microphone's own noise, under the clean conditions
ORDINARY_ROOM_DBFS = -62.0
NIGHT_ROOM_DBFS = -55.0  # a quiet bedroom, about 30 dB below a normal voice at the microphone
NIGHT_SPEECH_GAIN_DB = -12.0  # said quietly, lying in bed
NIGHT_MARGIN = 10.0  # no phrase within this many seconds of the night's ends
STRETCH_RANGE = (0.88, 1.12)  # speaking-rate spread of the extra takes
MAX_PEAK = 0.98


@dataclass(frozen=True)
class Utterance:
    text: str
    voice: Voice
    role: str
    intent: str | None = None
    stretch: float = 1.0
    gain_db: float = 0.0


@dataclass(frozen=True)
class Rendered:
    audio: np.ndarray  # speech plus any effect tail
    speech_seconds: float  # where the (dry) speech ends


@dataclass
class Track:
    """Utterances placed on a timeline; renders to one signal."""

    condition: str
    parts: list[tuple[int, np.ndarray]] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)

    def place(self, start: float, utterance: Utterance, rendered: Rendered) -> float:
        """Put an utterance at `start`; returns where its speech ends."""
        offset = round(start * RATE)
        start = offset / RATE
        end = start + rendered.speech_seconds
        self.parts.append((offset, rendered.audio))
        self.spans.append(Span(utterance.text, round(start, 3), round(end, 3), utterance.role, utterance.voice.name, self.condition, utterance.intent))
        return end

    def render(self, seconds: float) -> np.ndarray:
        total = max([round(seconds * RATE)] + [o + len(a) for o, a in self.parts])
        audio = np.zeros(total, dtype=np.float32)
        for offset, part in self.parts:
            audio[offset : offset + len(part)] += part
        return audio


class CorpusBuilder:
    def __init__(self, spec: CorpusSpec, seed: int, out: Path, cache: AudioCache, wake_phrases: list[tuple[str, str]]):
        self.spec = spec
        self.seed = seed
        self.out = out
        self.cache = cache
        self.wake_phrases = wake_phrases  # (phrase, intent)

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    def render(self, utterance: Utterance, condition: Condition) -> Rendered:
        dry = synthesize(utterance.text, utterance.voice, self.cache, utterance.stretch)
        speech_seconds = len(dry) / RATE
        if condition.effects:
            padded = np.concatenate([dry, np.zeros(round(condition.pad * RATE), dtype=np.float32)])
            recipe = f"effects|{' '.join(condition.effects)}|{condition.pad}|{utterance.voice.id}|{utterance.stretch:.3f}|{utterance.text}"
            wet = self.cache.get(recipe, lambda path: write_wav(path, sox(padded, condition.effects)))
            speech_seconds = (len(wet) - round(condition.pad * RATE)) / RATE
            dry = wet
        gain = db_to_gain(condition.gain_db + utterance.gain_db)
        return Rendered((dry * gain).astype(np.float32), speech_seconds)

    def sequence(self, track: Track, utterances: list[Utterance], condition: Condition, layout: Layout, rng: random.Random) -> float:
        """Place utterances one after another; returns the length of the file."""
        t = layout.lead
        for utterance in utterances:
            t = track.place(t, utterance, self.render(utterance, condition)) + layout.pause(rng)
        return t + layout.tail

    def write(self, name: str, kind: str, track: Track, seconds: float, noise_dbfs: float, voice: str = "") -> AudioFile:
        audio = track.render(seconds)
        audio += room_noise(len(audio) / RATE, noise_dbfs, seed=zlib.crc32(f"{self.seed}:{name}".encode()))[: len(audio)]
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        if peak > MAX_PEAK:
            audio *= MAX_PEAK / peak
        write_wav(self.out / f"{name}.wav", audio)
        return AudioFile(name, f"{name}.wav", kind, round(len(audio) / RATE, 3), tuple(track.spans), track.condition, voice)

    # ------------------------------------------------------------ the three kinds of file

    def triggers_file(self, condition: Condition, voice: Voice, near_misses: list[str]) -> AudioFile:
        name = f"triggers-{condition.name}-{voice.name}"
        rng = self.rng(name)
        utterances = [
            Utterance(phrase, voice, TRIGGER, intent, 1.0 if take == 0 else round(rng.uniform(*STRETCH_RANGE), 3))
            for take in range(self.spec.renditions)
            for phrase, intent in self.wake_phrases
        ]
        utterances += [Utterance(text, voice, NEAR_MISS) for text in near_misses]
        rng.shuffle(utterances)
        track = Track(condition.name)
        seconds = self.sequence(track, utterances, condition, TRIGGER_LAYOUT, rng)
        noise = REFERENCE_DBFS - condition.snr_db if condition.snr_db is not None else MIC_FLOOR_DBFS
        return self.write(name, TRIGGERS_FILE, track, seconds, noise, voice.name)

    def ordinary_files(self, voices: list[Voice]) -> list[AudioFile]:
        """Sentences dealt round-robin to the voices until there are ordinary_minutes of audio."""
        rng = self.rng("ordinary")
        sentences = ordinary_sentences()
        rng.shuffle(sentences)
        dealt: dict[str, list[Utterance]] = {v.name: [] for v in voices}
        seconds = 0.0
        i = 0
        while seconds < self.spec.ordinary_minutes * 60:
            voice = voices[i % len(voices)]
            level = rng.uniform(*ORDINARY_LEVEL_DB)
            utterance = Utterance(sentences[i % len(sentences)], voice, ORDINARY, gain_db=round(level, 2))
            dealt[voice.name].append(utterance)
            seconds += self.render(utterance, CLEAN).speech_seconds + sum(ORDINARY_LAYOUT.gap) / 2
            i += 1
        files = []
        for voice in voices:
            if dealt[voice.name]:
                track = Track(ORDINARY)
                length = self.sequence(track, dealt[voice.name], CLEAN, ORDINARY_LAYOUT, self.rng(f"ordinary-{voice.name}"))
                files.append(self.write(f"ordinary-{voice.name}", ORDINARY_FILE, track, length, ORDINARY_ROOM_DBFS, voice.name))
        return files

    def night_file(self, voices: list[Voice]) -> AudioFile:
        """Quiet room tone; phrases said softly, one in each equal slot of the night."""
        rng = self.rng("night")
        count = self.spec.night_phrases
        utterances = []
        for i in range(count):
            voice = voices[i % len(voices)]
            if i % 3 == 2:
                text = self.spec.near_misses[(i // 3) % len(self.spec.near_misses)]
                utterances.append(Utterance(text, voice, NEAR_MISS, gain_db=NIGHT_SPEECH_GAIN_DB))
            else:
                phrase, intent = self.wake_phrases[(i - i // 3) % len(self.wake_phrases)]
                utterances.append(Utterance(phrase, voice, TRIGGER, intent, gain_db=NIGHT_SPEECH_GAIN_DB))
        rng.shuffle(utterances)
        seconds = self.spec.night_minutes * 60
        slot = (seconds - 2 * NIGHT_MARGIN) / max(count, 1)
        track = Track(NIGHT_FILE)
        for i, utterance in enumerate(utterances):
            rendered = self.render(utterance, CLEAN)
            latest = max(0.0, slot - rendered.speech_seconds - TRIGGER_LAYOUT.gap[1])
            track.place(NIGHT_MARGIN + i * slot + rng.uniform(0.0, latest), utterance, rendered)
        return self.write(NIGHT_FILE, NIGHT_FILE, track, seconds, NIGHT_ROOM_DBFS)

    def build(self) -> Manifest:
        voices = [voice_named(v) for v in self.spec.voices]
        files = []
        rotation = 0
        for condition in (condition_named(c) for c in self.spec.conditions):
            for voice in voices:
                k = self.spec.near_misses_per_file
                pool = self.spec.near_misses
                chosen = [pool[(rotation + j) % len(pool)] for j in range(k)] if pool else []
                rotation += k
                files.append(self.triggers_file(condition, voice, chosen))
        if self.spec.ordinary_minutes > 0:
            files += self.ordinary_files(voices)
        if self.spec.night_minutes > 0:
            files.append(self.night_file(voices))
        return Manifest(self.seed, json.loads(json.dumps(asdict(self.spec))), tuple(files))  # as JSON has it


def ordinary_sentences(path: Path = ORDINARY_SENTENCES) -> list[str]:
    lines = (line.strip() for line in path.read_text("utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def trigger_table():
    """The program's default trigger table (phrases/triggers.toml)."""
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir

    return load_triggers(bundled_phrases_dir() / "triggers.toml")


def wake_phrases(table) -> list[tuple[str, str]]:
    """(phrase, intent) for every default phrase of the wake intents, in file order."""
    return [(phrase, intent) for intent in WAKE_INTENTS for phrase in table.intents[intent]]


def always_on_phrases(table) -> list[str]:
    """Phrases that may fire at any time (not only in a follow-up window): never in a non-trigger."""
    return [p for intent, phrases in table.intents.items() if intent not in table.follow_up for p in phrases]


def contains_phrase(text: str, phrase: str) -> bool:
    from voice_skill.intents import normalize

    return f" {normalize(phrase)} " in f" {normalize(text)} "


def trigger_text_in(texts: list[str], phrases: list[str]) -> list[tuple[str, str]]:
    """(text, phrase) for each text that contains one of the phrases."""
    return [(t, p) for t in texts for p in phrases if contains_phrase(t, p)]


def build_corpus(spec: CorpusSpec, seed: int, out: Path, cache_dir: Path | None = None) -> Manifest:
    """Build every file of the corpus under out/ and write out/manifest.json."""
    table = trigger_table()
    clashes = trigger_text_in(list(spec.near_misses) + ordinary_sentences(), always_on_phrases(table))
    if clashes:
        raise ValueError(f"near misses or ordinary sentences contain trigger phrases: {clashes}")
    cache = AudioCache(cache_dir or out.parent / "cache")
    manifest = CorpusBuilder(spec, seed, out, cache, wake_phrases(table)).build()
    manifest.write(out / "manifest.json")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.corpus", description="Build the benchmark corpus.")
    parser.add_argument("--quick", action="store_true", help="a small slice")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: bench/out)")
    args = parser.parse_args(argv)
    spec = CorpusSpec.quick() if args.quick else CorpusSpec()
    manifest = build_corpus(spec, args.seed, args.out / "corpus", args.out / "cache")
    minutes = sum(f.duration for f in manifest.files) / 60
    print(f"{len(manifest.files)} files, {minutes:.1f} minutes: {args.out / 'corpus' / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
