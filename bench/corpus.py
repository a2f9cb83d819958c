"""The benchmark corpus: long WAV files and a manifest of what was said where.

    python3 -m bench.corpus [--quick] [--voice-set dev] [--seed N] [--out DIR]     # build only

Files (16 kHz mono), each a single program run so start-up is paid once per file:
- triggers-CONDITION-VOICE.wav: every wake phrase (intents question and tip) in a few takes,
  interleaved with near misses (the listed ones and the held-out ones, each in rotation),
  2.5-4 s apart, in one condition (clean, soft, reverb, fan noise at 10 and 5 dB, tempo 0.9
  and 1.1, and run-on: each phrase 0.05-0.25 s after a lead-in sentence, clean and at 10 dB)
  and one voice (four flite voices, Piper joe, espeak-ng);
- ordinary-VOICE-K.wav: television, radio, reading aloud and conversation
  (bench/ordinary_sentences.txt) with natural pauses and levels, no wake phrase, dealt to the
  evaluation voices in parts of about `ordinary_chunk_minutes`; every `ordinary_fan_every`-th
  part has a fan at 10-20 dB SNR; at least `ordinary_minutes` in all;
- night.wav: a long quiet bedroom (low room tone) with a few phrases at known times;
- followups-VOICE-K.wav: the follow-up commands (the bedtime ritual's, "another one", "stop",
  the voice changes: every phrase of every intent but the wake phrases), each 2-3 s after a
  wake phrase or the command before it, so inside the follow-up window, in sessions of up to
  three after a wake phrase; and the same commands said outside any window (before the first
  wake phrase, and after 10-11 s of quiet), once per voice. Take K = 1 at normal speed, K = 2
  stretched; evaluation voices.

`--voice-set dev` builds the same kinds of file from the training helper's DEV voices and the
dev texts (bench/dev_*.txt), never from the evaluation voices or texts.

Everything is a function of the seed: the same seed gives the same manifest and audio
(Piper's generator noise has a seed of its own, bench.audio.PIPER_SEED).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from bench.audio import (
    RATE,
    REFERENCE_DBFS,
    TRAINING,
    VOICES,
    AudioCache,
    Voice,
    db_to_gain,
    dev_voices,
    room_noise,
    sox,
    synthesize,
    voice_named,
    write_wav,
)
from bench.manifest import (
    FOLLOW_UP,
    FOLLOWUPS_FILE,
    HELD_OUT,
    LEAD_IN,
    LISTED,
    NEAR_MISS,
    NIGHT_FILE,
    ORDINARY,
    ORDINARY_FILE,
    OUTSIDE,
    TRIGGER,
    TRIGGERS_FILE,
    AudioFile,
    Manifest,
    Span,
)

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = BENCH_DIR / "out"
ORDINARY_SENTENCES = BENCH_DIR / "ordinary_sentences.txt"
HELD_OUT_NEAR_MISSES = BENCH_DIR / "heldout_near_misses.txt"
RUNON_LEADINS = BENCH_DIR / "runon_leadins.txt"
DEV_SENTENCES = BENCH_DIR / "dev_sentences.txt"
DEV_NEAR_MISSES = BENCH_DIR / "dev_near_misses.txt"
DEV_LEADINS = BENCH_DIR / "dev_leadins.txt"
WAKE_INTENTS = ("question", "tip")
VOICE_INTENTS = ("softer", "louder", "slower", "faster")
EVAL_SET, DEV_SET = "eval", "dev"

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


def text_lines(path: Path) -> list[str]:
    """Non-empty lines that are not # comments."""
    lines = (line.strip() for line in path.read_text("utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def held_out_near_misses() -> tuple[str, ...]:
    """bench/heldout_near_misses.txt: sound-alikes nobody trained or tuned on (see the file)."""
    return tuple(text_lines(HELD_OUT_NEAR_MISSES))


def runon_leadins() -> tuple[str, ...]:
    return tuple(text_lines(RUNON_LEADINS))


@dataclass(frozen=True)
class Condition:
    name: str
    gain_db: float = 0.0  # speech level relative to a normal voice
    effects: tuple[str, ...] = ()  # sox effects on each utterance
    pad: float = 0.0  # seconds of silence after the speech for an effect's tail (reverb)
    snr_db: float | None = None  # fan noise under the whole file, relative to a normal voice
    runon: bool = False  # each phrase right after a lead-in sentence (gap RUNON_GAP)


RUNON_GAP = (0.05, 0.25)  # seconds from the end of the lead-in to the phrase, uniform
CONDITIONS = (
    Condition("clean"),
    Condition("soft", gain_db=-18.0),
    Condition("reverb", effects=("reverb", "50", "50", "30", "100", "5"), pad=0.8),
    Condition("fan10", snr_db=10.0),
    Condition("fan5", snr_db=5.0),
    Condition("tempo0.9", effects=("tempo", "-s", "0.9")),
    Condition("tempo1.1", effects=("tempo", "-s", "1.1")),
    Condition("runon", runon=True),
    Condition("runon10", snr_db=10.0, runon=True),
)
CLEAN = CONDITIONS[0]


def condition_named(name: str) -> Condition:
    for condition in CONDITIONS:
        if condition.name == name:
            return condition
    raise KeyError(f"unknown condition {name!r}; known: {', '.join(c.name for c in CONDITIONS)}")


@dataclass(frozen=True)
class CorpusSpec:
    voice_set: str = EVAL_SET  # EVAL_SET, or DEV_SET: the training helper's dev voices and texts
    conditions: tuple[str, ...] = tuple(c.name for c in CONDITIONS)
    voices: tuple[str, ...] = tuple(v.name for v in VOICES)
    renditions: int = 2  # takes of each wake phrase per file (the first at normal speed)
    near_misses_per_file: int = 6  # drawn in rotation from near_misses
    near_misses: tuple[str, ...] = NEAR_MISSES
    held_out_per_file: int = 6  # drawn in rotation from held_out
    held_out: tuple[str, ...] = field(default_factory=held_out_near_misses)
    leadins: tuple[str, ...] = field(default_factory=runon_leadins)  # run-on conditions
    ordinary_text: str = ORDINARY_SENTENCES.name  # a file in bench/
    ordinary_minutes: float = 185.0  # about this much (3 h and a margin); 0: no ordinary-speech files
    ordinary_chunk_minutes: float = 12.0  # each voice's share is cut into equal files of about this
    ordinary_fan_every: int = 3  # every n-th part of a voice has a fan under it (0: never)
    ordinary_fan_snr: tuple[float, float] = (10.0, 20.0)  # that fan, dB below a normal voice
    night_minutes: float = 25.0  # 0: no night file
    night_phrases: int = 18  # wake phrases and near misses (2:1) spread over the night
    followup_takes: int = 2  # follow-up files per voice, each with every follow-up phrase once (the first at normal speed); 0: none

    @staticmethod
    def quick() -> CorpusSpec:
        return CorpusSpec(
            conditions=("clean", "fan10", "runon"),
            voices=("slt", "joe", "espeak"),
            renditions=1,
            near_misses_per_file=3,
            held_out_per_file=3,
            ordinary_minutes=3.0,
            ordinary_chunk_minutes=0.75,
            ordinary_fan_every=2,
            night_minutes=4.0,
            night_phrases=3,
            followup_takes=1,
        )

    @staticmethod
    def dev(voices: tuple[str, ...] | None = None, quick: bool = False) -> CorpusSpec:
        """The corpus from the DEV training voices and the dev texts: for tuning, not evaluation.
        The held-out near misses are never in it."""
        base = CorpusSpec.quick() if quick else CorpusSpec(ordinary_minutes=45.0, ordinary_chunk_minutes=2.5)
        return replace(
            base,
            voice_set=DEV_SET,
            voices=voices if voices is not None else tuple(v.name for v in dev_voices()),
            near_misses=tuple(text_lines(DEV_NEAR_MISSES)),
            held_out=(),
            held_out_per_file=0,
            leadins=tuple(text_lines(DEV_LEADINS)),
            ordinary_text=DEV_SENTENCES.name,
        )


@dataclass(frozen=True)
class Layout:
    """Timing of a sequence of utterances (seconds)."""

    lead: float = 1.5
    gap: tuple[float, float] = (2.5, 4.0)  # from the end of one utterance to the next
    tail: float = 3.0
    long_pause_chance: float = 0.0  # now and then a longer pause instead of a gap
    long_pause: tuple[float, float] = (3.0, 8.0)

    def expected_pause(self) -> float:
        return (1 - self.long_pause_chance) * sum(self.gap) / 2 + self.long_pause_chance * sum(self.long_pause) / 2

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

# Follow-up files. With --no-speak an answer takes no time: the window (8 s) opens when the
# command that asked for it is heard, a few tenths of a second after it ends.
FOLLOWUP_GAP = (2.0, 3.0)  # from the end of one utterance to the next (a command: inside the window of the one before)
OUTSIDE_PAUSE = (10.0, 11.0)  # quiet before the commands said after a session: every window has closed
SESSION_COMMANDS = 3  # follow-up commands after one wake phrase, at most
ENDS_SESSION = ("stop",)  # closes the window: last in its session
ENDS_FILE = ("goodnight",)  # quiet until the morning: last in its file
MAX_PEAK = 0.98


@dataclass(frozen=True)
class Utterance:
    text: str
    voice: Voice
    role: str
    intent: str | None = None
    stretch: float = 1.0
    gain_db: float = 0.0
    group: str | None = None  # near misses: LISTED or HELD_OUT


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
        self.spans.append(Span(utterance.text, round(start, 3), round(end, 3), utterance.role, utterance.voice.name, self.condition, utterance.intent, utterance.group))
        return end

    def render(self, seconds: float) -> np.ndarray:
        total = max([round(seconds * RATE)] + [o + len(a) for o, a in self.parts])
        audio = np.zeros(total, dtype=np.float32)
        for offset, part in self.parts:
            audio[offset : offset + len(part)] += part
        return audio


class CorpusBuilder:
    def __init__(self, spec: CorpusSpec, seed: int, out: Path, cache: AudioCache, wake_phrases: list[tuple[str, str]], followups: Sequence[tuple[str, str]] = ()):
        self.spec = spec
        self.seed = seed
        self.out = out
        self.cache = cache
        self.wake_phrases = wake_phrases  # (phrase, intent)
        self.followups = list(followups)  # (phrase, intent): the commands that act only in a follow-up window

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

    def sequence_runon(self, track: Track, utterances: list[Utterance], condition: Condition, layout: Layout, rng: random.Random) -> float:
        """Like sequence, but each utterance comes RUNON_GAP after a lead-in sentence in the same
        voice; the lead-ins are LEAD_IN spans, the utterances keep their own spans."""
        leadins = list(self.spec.leadins)
        rng.shuffle(leadins)
        t = layout.lead
        for i, utterance in enumerate(utterances):
            lead = Utterance(leadins[i % len(leadins)], utterance.voice, LEAD_IN)
            end = track.place(t, lead, self.render(lead, condition))
            t = track.place(end + rng.uniform(*RUNON_GAP), utterance, self.render(utterance, condition)) + layout.pause(rng)
        return t + layout.tail

    def write(self, name: str, kind: str, track: Track, seconds: float, noise_dbfs: float, voice: str = "", part: int = 0) -> AudioFile:
        audio = track.render(seconds)
        audio += room_noise(len(audio) / RATE, noise_dbfs, seed=zlib.crc32(f"{self.seed}:{name}".encode()))[: len(audio)]
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        if peak > MAX_PEAK:
            audio *= MAX_PEAK / peak
        write_wav(self.out / f"{name}.wav", audio)
        return AudioFile(name, f"{name}.wav", kind, round(len(audio) / RATE, 3), tuple(track.spans), track.condition, voice, part)

    # ------------------------------------------------------------ the four kinds of file

    def triggers_file(self, condition: Condition, voice: Voice, near_misses: list[Utterance]) -> AudioFile:
        name = f"triggers-{condition.name}-{voice.name}"
        rng = self.rng(name)
        utterances = [
            Utterance(phrase, voice, TRIGGER, intent, 1.0 if take == 0 else round(rng.uniform(*STRETCH_RANGE), 3))
            for take in range(self.spec.renditions)
            for phrase, intent in self.wake_phrases
        ]
        utterances += [replace(u, voice=voice) for u in near_misses]
        rng.shuffle(utterances)
        track = Track(condition.name)
        if condition.runon:
            seconds = self.sequence_runon(track, utterances, condition, TRIGGER_LAYOUT, rng)
        else:
            seconds = self.sequence(track, utterances, condition, TRIGGER_LAYOUT, rng)
        noise = REFERENCE_DBFS - condition.snr_db if condition.snr_db is not None else MIC_FLOOR_DBFS
        return self.write(name, TRIGGERS_FILE, track, seconds, noise, voice.name)

    def ordinary_files(self, voices: list[Voice]) -> list[AudioFile]:
        """Sentences dealt round-robin to the voices until there are ordinary_minutes of audio
        (counting the expected pauses); each voice's share cut into about equal parts of about
        ordinary_chunk_minutes, every ordinary_fan_every-th part with a fan at ordinary_fan_snr."""
        rng = self.rng("ordinary")
        sentences = ordinary_sentences(BENCH_DIR / self.spec.ordinary_text)
        rng.shuffle(sentences)
        dealt: dict[str, list[tuple[Utterance, float]]] = {v.name: [] for v in voices}
        seconds = 0.0
        i = 0
        while seconds < self.spec.ordinary_minutes * 60:
            voice = voices[i % len(voices)]
            level = rng.uniform(*ORDINARY_LEVEL_DB)
            utterance = Utterance(sentences[i % len(sentences)], voice, ORDINARY, gain_db=round(level, 2))
            took = self.render(utterance, CLEAN).speech_seconds + ORDINARY_LAYOUT.expected_pause()
            dealt[voice.name].append((utterance, took))
            seconds += took
            i += 1
        files = []
        for voice in voices:
            share = sum(took for _, took in dealt[voice.name])
            count = max(1, round(share / (self.spec.ordinary_chunk_minutes * 60)))
            parts: list[list[Utterance]] = [[] for _ in range(count)]
            filled = 0.0
            for utterance, took in dealt[voice.name]:
                parts[min(count - 1, int(filled / share * count))].append(utterance)
                filled += took
            for k, part in enumerate(parts, 1):
                if not part:
                    continue
                name = f"ordinary-{voice.name}-{k}"
                fan = self.spec.ordinary_fan_every and k % self.spec.ordinary_fan_every == 0
                snr = round(self.rng(name).uniform(*self.spec.ordinary_fan_snr), 1) if fan else None
                track = Track(ORDINARY if snr is None else f"{ORDINARY}-fan{snr:g}")
                length = self.sequence(track, part, CLEAN, ORDINARY_LAYOUT, self.rng(f"ordinary-{voice.name}-{k}-layout"))
                noise = ORDINARY_ROOM_DBFS if snr is None else REFERENCE_DBFS - snr
                files.append(self.write(name, ORDINARY_FILE, track, length, noise, voice.name, k))
        return files

    def night_file(self, voices: list[Voice]) -> AudioFile:
        """Quiet room tone; phrases said softly, one in each equal slot of the night. Every
        third phrase is a near miss, listed and held-out ones taking turns."""
        rng = self.rng("night")
        count = self.spec.night_phrases
        pools = [(LISTED, self.spec.near_misses), (HELD_OUT, self.spec.held_out)]
        pools = [(group, pool) for group, pool in pools if pool]
        utterances = []
        for i in range(count):
            voice = voices[i % len(voices)]
            if i % 3 == 2 and pools:
                n = i // 3
                group, pool = pools[n % len(pools)]
                text = pool[(n // len(pools)) % len(pool)]
                utterances.append(Utterance(text, voice, NEAR_MISS, gain_db=NIGHT_SPEECH_GAIN_DB, group=group))
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

    def followup_files(self, voice: Voice) -> list[AudioFile]:
        """Every follow-up phrase once per take inside a window, and once per voice outside one
        (dealt over the takes). A take holds one command that ends the night (goodnight) per
        file: with more such phrases, a take is split into as many files."""
        takes = self.spec.followup_takes
        outside = list(self.followups)
        self.rng(f"followups-{voice.name}-outside").shuffle(outside)
        ends = [c for c in self.followups if c[1] in ENDS_FILE] or [None]
        others = [c for c in self.followups if c[1] not in ENDS_FILE]
        files = []
        for take in range(1, takes + 1):
            for j, end in enumerate(ends):
                part = (take - 1) * len(ends) + j + 1
                inside = others[j :: len(ends)] + ([end] if end else [])
                said_outside = outside[part - 1 :: takes * len(ends)]
                files.append(self.followups_file(voice, part, take, inside, said_outside))
        return files

    def followups_file(self, voice: Voice, part: int, take: int, inside: list[tuple[str, str]], outside: list[tuple[str, str]]) -> AudioFile:
        """Half the outside commands before any wake phrase; then sessions (a wake phrase and up
        to SESSION_COMMANDS commands), the wake phrases in rotation; after the middle session,
        OUTSIDE_PAUSE of quiet and the other half. Every utterance comes FOLLOWUP_GAP after the
        one before, but the first after that quiet."""
        name = f"followups-{voice.name}-{part}"
        rng = self.rng(name)

        def stretch() -> float:
            return 1.0 if take == 1 else round(rng.uniform(*STRETCH_RANGE), 3)

        commands = [Utterance(phrase, voice, FOLLOW_UP, intent, stretch()) for phrase, intent in inside]
        said_outside = [Utterance(phrase, voice, OUTSIDE, intent, stretch()) for phrase, intent in outside]
        before, after = said_outside[: (len(said_outside) + 1) // 2], said_outside[(len(said_outside) + 1) // 2 :]
        groups = sessions(commands, rng)
        first_wake = rng.randrange(len(self.wake_phrases))
        track = Track(CLEAN.name)
        end: float | None = None  # where the last speech ended

        def say(utterance: Utterance, pause: tuple[float, float]) -> None:
            nonlocal end
            start = TRIGGER_LAYOUT.lead if end is None else end + rng.uniform(*pause)
            end = track.place(start, utterance, self.render(utterance, CLEAN))

        for utterance in before:
            say(utterance, FOLLOWUP_GAP)
        middle = max(1, len(groups) // 2)
        for i, group in enumerate(groups):
            phrase, intent = self.wake_phrases[(first_wake + i) % len(self.wake_phrases)]
            say(Utterance(phrase, voice, TRIGGER, intent, stretch()), FOLLOWUP_GAP)
            for command in group:
                say(command, FOLLOWUP_GAP)
            if i + 1 == middle:
                for k, utterance in enumerate(after):
                    say(utterance, OUTSIDE_PAUSE if k == 0 else FOLLOWUP_GAP)
        assert end is not None
        return self.write(name, FOLLOWUPS_FILE, track, end + TRIGGER_LAYOUT.tail, MIC_FLOOR_DBFS, voice.name, part)

    def build(self) -> Manifest:
        voices = [voice_named(v) for v in self.spec.voices]
        files = []
        rotation = {LISTED: 0, HELD_OUT: 0}
        per_file = {LISTED: self.spec.near_misses_per_file, HELD_OUT: self.spec.held_out_per_file}
        pools = {LISTED: self.spec.near_misses, HELD_OUT: self.spec.held_out}
        for condition in (condition_named(c) for c in self.spec.conditions):
            for voice in voices:
                chosen = []
                for group, pool in pools.items():
                    k = per_file[group] if pool else 0
                    chosen += [Utterance(pool[(rotation[group] + j) % len(pool)], voice, NEAR_MISS, group=group) for j in range(k)]
                    rotation[group] += k
                files.append(self.triggers_file(condition, voice, chosen))
        # Ordinary speech and the night: the voices that are held out (or dev), not a training family.
        speakers = [v for v in voices if v.family != TRAINING] or voices
        if self.spec.ordinary_minutes > 0:
            files += self.ordinary_files(speakers)
        if self.spec.night_minutes > 0:
            files.append(self.night_file(speakers))
        if self.spec.followup_takes > 0 and self.followups:
            for voice in speakers:
                files += self.followup_files(voice)
        return Manifest(self.seed, json.loads(json.dumps(asdict(self.spec))), tuple(files))  # as JSON has it


def sessions(commands: list[Utterance], rng: random.Random, size: int = SESSION_COMMANDS) -> list[list[Utterance]]:
    """The commands in sessions of at most `size` (each follows a wake phrase), shuffled: a
    command that closes the window (ENDS_SESSION) is last in its session, one that ends the
    night (ENDS_FILE, at most one) last in the last session."""
    last = [c for c in commands if c.intent in ENDS_FILE]
    if len(last) > 1:
        raise ValueError(f"one command that ends the night per file, not {len(last)}")
    closing = [c for c in commands if c.intent in ENDS_SESSION]
    rest = [c for c in commands if c.intent not in ENDS_FILE + ENDS_SESSION]
    rng.shuffle(rest)
    rng.shuffle(closing)
    count = max(math.ceil(len(commands) / size), len(closing) + len(last), 1)
    enders: dict[int, Utterance] = {count - 1: last[0]} if last else {}
    for i, command in zip(rng.sample(range(count - len(last)), len(closing)), closing):
        enders[i] = command
    groups: list[list[Utterance]] = [[] for _ in range(count)]
    room = [size - (i in enders) for i in range(count)]
    i = 0
    for command in rest:  # dealt in turn to the sessions with room
        while len(groups[i % count]) >= room[i % count]:
            i += 1
        groups[i % count].append(command)
        i += 1
    return [group + ([enders[i]] if i in enders else []) for i, group in enumerate(groups) if group or i in enders]


def ordinary_sentences(path: Path = ORDINARY_SENTENCES) -> list[str]:
    return text_lines(path)


def trigger_table():
    """The program's default trigger table (phrases/triggers.toml)."""
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir

    return load_triggers(bundled_phrases_dir() / "triggers.toml")


def wake_phrases(table) -> list[tuple[str, str]]:
    """(phrase, intent) for every default phrase of the wake intents, in file order."""
    return [(phrase, intent) for intent in WAKE_INTENTS for phrase in table.intents[intent]]


def followup_phrases(table) -> list[tuple[str, str]]:
    """(phrase, intent) for every phrase of every intent but the wake phrases, in file order:
    the skill acts on these only inside the follow-up window (the follow-up intents and the
    voice changes)."""
    return [(phrase, intent) for intent, phrases in table.intents.items() if intent not in WAKE_INTENTS for phrase in phrases]


def always_on_phrases(table) -> list[str]:
    """Phrases that may fire at any time (not only in a follow-up window): never in a non-trigger."""
    return [p for intent, phrases in table.intents.items() if intent not in table.follow_up for p in phrases]


def command_phrases(table) -> list[str]:
    """What ordinary speech may never say whole: the always-on phrases and the voice changes
    (whether or not the table makes them follow-up only). Follow-up phrases ("stop",
    "another one") may be said: outside a follow-up window they must not act (stray commands)."""
    voice = [p for intent in VOICE_INTENTS for p in table.intents.get(intent, ())]
    return list(dict.fromkeys(always_on_phrases(table) + voice))


def all_phrases(table) -> list[str]:
    """Every phrase of every intent: never in a near miss or a lead-in."""
    return [p for phrases in table.intents.values() for p in phrases]


def contains_phrase(text: str, phrase: str) -> bool:
    from voice_skill.intents import normalize

    return f" {normalize(phrase)} " in f" {normalize(text)} "


def trigger_text_in(texts: list[str], phrases: list[str]) -> list[tuple[str, str]]:
    """(text, phrase) for each text that contains one of the phrases."""
    return [(t, p) for t in texts for p in phrases if contains_phrase(t, p)]


def trigger_sounds_in(texts: list[str], phrases: list[str]) -> list[tuple[str, str]]:
    """(text, phrase) for each text in which some run of whole words sounds exactly like one
    of the phrases (the first dictionary pronunciation of each word): "goodnight world" holds
    "good night" though no spelling check finds it."""
    from voice_skill.intents import normalize
    from voice_skill.recognizers.sphinx import model_paths, read_pronunciations

    text_words = [normalize(t).split() for t in texts]
    words = {w for ws in text_words for w in ws} | {w for p in phrases for w in normalize(p).split()}
    phones = {w: v[0][1].split() for w, v in read_pronunciations(model_paths()[1], words).items()}

    def sounds(ws: list[str]) -> list[str] | None:
        if not all(w in phones for w in ws):
            return None
        return [ph for w in ws for ph in phones[w]]

    found = []
    for text, ws in zip(texts, text_words):
        for phrase in phrases:
            target = sounds(normalize(phrase).split())
            if target is None:
                continue
            if any(sounds(ws[i:j]) == target for i in range(len(ws)) for j in range(i + 1, len(ws) + 1)):
                found.append((text, phrase))
    return found


# ------------------------------------------------------------------ what the program or training knows


def normalized(texts) -> frozenset[str]:
    from voice_skill.intents import normalize

    return frozenset(normalize(str(t)) for t in texts)


def runtime_confusions(table) -> frozenset[str] | None:
    """voice_skill.recognizers.confusions.confusion_phrases(trigger) for each default wake
    phrase, or None while that module does not exist."""
    import importlib

    try:
        module = importlib.import_module("voice_skill.recognizers.confusions")
    except ModuleNotFoundError:
        return None
    return normalized(c for phrase, _ in wake_phrases(table) for c in module.confusion_phrases(phrase))


def training_hard_negatives(table) -> frozenset[str] | None:
    """The training helper's generated hard negatives (training/confusions.py), or None."""
    import importlib

    if not (BENCH_DIR.parent / "training" / "confusions.py").exists():
        return None
    if str(BENCH_DIR.parent) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR.parent))
    module = importlib.import_module("training.confusions")
    if not hasattr(module, "hard_negatives"):
        return None
    return normalized(x for group in module.hard_negatives(table).values() for x in group)


def training_sentences() -> frozenset[str] | None:
    """Every line of training/sentences/*.txt and training/templates.py's generated sentences,
    or None while there are none."""
    files = sorted((BENCH_DIR.parent / "training" / "sentences").glob("*.txt"))
    texts = [line for f in files for line in text_lines(f)]
    if (BENCH_DIR.parent / "training" / "templates.py").exists():
        import importlib

        if str(BENCH_DIR.parent) not in sys.path:
            sys.path.insert(0, str(BENCH_DIR.parent))
        module = importlib.import_module("training.templates")
        texts += list(getattr(module, "template_sentences", lambda: [])())
    return normalized(texts) if texts else None


def trained_texts(table) -> tuple[frozenset[str], list[str]]:
    """Near-miss sentences the program or its training knows about (decoys, confusions, training
    text), normalised; and which of those sources exist here."""
    known = set(normalized(table.decoys))
    sources = ["decoys"]
    for name, texts in (("runtime confusions", runtime_confusions(table)), ("training hard negatives", training_hard_negatives(table)), ("training sentences", training_sentences())):
        if texts is not None:
            known |= texts
            sources.append(name)
    return frozenset(known), sources


def check_texts(spec: CorpusSpec, table) -> None:
    """No phrase of the program in what must not fire: near misses and lead-ins hold none of
    any intent, ordinary speech none of the commands (see command_phrases)."""
    strict = trigger_text_in(list(spec.near_misses) + list(spec.held_out) + list(spec.leadins), all_phrases(table))
    loose = trigger_text_in(ordinary_sentences(BENCH_DIR / spec.ordinary_text), command_phrases(table))
    if strict or loose:
        raise ValueError(f"near misses, lead-ins or ordinary sentences contain command phrases: {strict + loose}")


def build_corpus(spec: CorpusSpec, seed: int, out: Path, cache_dir: Path | None = None) -> Manifest:
    """Build every file of the corpus under out/ and write out/manifest.json."""
    table = trigger_table()
    check_texts(spec, table)
    cache = AudioCache(cache_dir or out.parent / "cache")
    manifest = CorpusBuilder(spec, seed, out, cache, wake_phrases(table), followup_phrases(table)).build()
    manifest.write(out / "manifest.json")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.corpus", description="Build the benchmark corpus.")
    parser.add_argument("--quick", action="store_true", help="a small slice")
    parser.add_argument("--voice-set", choices=(EVAL_SET, DEV_SET), default=EVAL_SET, help="dev: the training helper's DEV voices and the dev texts (tuning only)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: bench/out)")
    args = parser.parse_args(argv)
    if args.voice_set == DEV_SET:
        spec = CorpusSpec.dev(quick=args.quick)
        out = args.out / "dev"
    else:
        spec = CorpusSpec.quick() if args.quick else CorpusSpec()
        out = args.out
    manifest = build_corpus(spec, args.seed, out / "corpus", args.out / "cache")
    minutes = sum(f.duration for f in manifest.files) / 60
    print(f"{len(manifest.files)} files, {minutes:.1f} minutes: {out / 'corpus' / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
