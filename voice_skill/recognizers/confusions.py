"""Sound-alikes of a trigger phrase, generated from the pronunciation dictionary.

A hand list of decoys protects only what it names. The confusion set is generated instead,
for any trigger phrase (a user's own too):

- extension: a word said with a little more at its end ("asking us a question", "give us
  the tips", "ask us a questions"): inflections and the like, found as common words whose
  phones begin with all of the word's phones;
- substitution: one word replaced by a common word that sounds like it ("give us a tip" ->
  "give us a sip", "ask us a question" -> "ask gus a question"): the phones of the two words
  differ by at most one phone, or two in longer words, where a phone swapped for one of its
  own class (p/t/k, s/z, two vowels...) counts half;
- closed class: a pronoun or article swapped for another ("ask him a question");
- partial: the end of the phrase alone ("a question", "the question", "a tip"), which is
  what is left when the beginning is another word ("just a tip", "what is the question");
- dropped: one inner word left out ("ask a question", "give a tip").

How common a word is comes from voice_skill/data/word_frequencies.txt (made from the
PocketSphinx language model by scripts/make_word_frequencies.py); rare dictionary entries
are left out because people do not say them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Iterable

import numpy as np

VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
PHONE_CLASSES = (
    VOWELS,
    frozenset("P B T D K G".split()),
    frozenset("F V TH DH S Z SH ZH HH".split()),
    frozenset("CH JH".split()),
    frozenset("M N NG".split()),
    frozenset("L R W Y".split()),
)
SAME_CLASS_COST = 0.5
PRONOUNS = ("us", "me", "him", "her", "them", "you", "it", "we", "i", "they", "his", "my", "your", "our", "their")
ARTICLES = ("a", "the", "one", "this", "that", "some", "another", "any")
MIN_LOG10_FREQUENCY = -5.5  # about the 10,000 most common words
SUBSTITUTIONS_PER_WORD = 30
EXTENSIONS_PER_WORD = 8
MAX_EXTENSION_PHONES = 2  # "ask" -> "asking", "tip" -> "tips", "question" -> "questions"
MIN_PHONES_TO_SUBSTITUTE = 2  # shorter words get no sound-alike substitutes
NEVER_SHOWN = frozenset({"ass", "piss", "dick", "hell", "gays"})  # rivals appear in -v logs: nothing crude
MIN_LETTERS = 3  # "s", "es", "os": letter names and abbreviations are not what people say


@dataclass(frozen=True)
class Confusion:
    text: str
    trigger: str
    kind: str  # extension, substitution, closed-class, partial, dropped
    distance: float  # phone distance of the changed word (0 for partials and drops)


PHONES = tuple(sorted(set().union(*PHONE_CLASSES)))
PHONE_INDEX = {p: i for i, p in enumerate(PHONES)}
IS_VOWEL = np.array([p in VOWELS for p in PHONES], dtype=bool)


def phone_class(phone: str) -> int:
    for i, members in enumerate(PHONE_CLASSES):
        if phone in members:
            return i
    return -1


def _swap_costs() -> np.ndarray:
    costs = np.ones((len(PHONES), len(PHONES)), dtype=np.float32)
    for i, a in enumerate(PHONES):
        for j, b in enumerate(PHONES):
            if a == b:
                costs[i, j] = 0.0
            elif phone_class(a) == phone_class(b):
                costs[i, j] = SAME_CLASS_COST
    return costs


SWAP_COSTS = _swap_costs()


def phone_distance(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """Edit distance between two phone strings; a swap within a phone class costs half."""
    return float(_distances(a, np.array([[PHONE_INDEX[p] for p in b]], dtype=np.int16))[0]) if b else float(len(a))


def _distances(a: tuple[str, ...], others: np.ndarray) -> np.ndarray:
    """The same distance from `a` to each row of `others` (phone indexes, all one length)."""
    count, length = others.shape
    previous = np.tile(np.arange(length + 1, dtype=np.float32), (count, 1))
    for i, phone in enumerate(a, 1):
        swap = SWAP_COSTS[PHONE_INDEX[phone]][others]  # (count, length)
        current = np.empty_like(previous)
        current[:, 0] = i
        for j in range(1, length + 1):
            current[:, j] = np.minimum(np.minimum(previous[:, j] + 1.0, current[:, j - 1] + 1.0), previous[:, j - 1] + swap[:, j - 1])
        previous = current
    return previous[:, -1]


@dataclass(frozen=True)
class Lexicon:
    """Dictionary entries (word -> [(entry, phones)], as sphinx.read_pronunciations gives them)
    and how common each word is (log10 frequency). Phones stay one string per entry until a
    word is looked at: some 20,000 words are held while the confusions are made."""

    entries: dict[str, list[tuple[str, str]]]
    frequency: dict[str, float]

    def knows(self, word: str) -> bool:
        return word in self.entries

    def phones(self, word: str) -> tuple[tuple[str, ...], ...]:
        return tuple(tuple(p.split()) for _, p in self.entries.get(word, ()))

    def common_words(self, min_log10: float = MIN_LOG10_FREQUENCY) -> list[str]:
        return [w for w, f in self.frequency.items() if f >= min_log10 and w in self.entries and w.isalpha() and len(w) >= MIN_LETTERS and w not in NEVER_SHOWN]

    @functools.cached_property
    def by_length(self) -> dict[int, tuple[list[str], np.ndarray]]:
        """The common words' pronunciations grouped by length: (word of each row, phone indexes)."""
        groups: dict[int, tuple[list[str], list[list[int]]]] = {}
        for word in self.common_words():
            for _, text in self.entries[word]:
                phones = text.split()
                if all(p in PHONE_INDEX for p in phones):
                    owners, rows = groups.setdefault(len(phones), ([], []))
                    owners.append(word)
                    rows.append([PHONE_INDEX[p] for p in phones])
        return {n: (owners, np.array(rows, dtype=np.int16)) for n, (owners, rows) in groups.items()}


def read_frequencies() -> dict[str, float]:
    text = resources.files("voice_skill").joinpath("data", "word_frequencies.txt").read_text("utf-8")
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            word, _, value = line.partition(" ")
            found[word] = float(value)
    return found


def lexicon_from(pronunciations: dict[str, list[tuple[str, str]]], frequency: dict[str, float]) -> Lexicon:
    """A lexicon from dictionary entries (word -> [(entry, phones)], as sphinx.read_pronunciations
    gives them) and word frequencies."""
    return Lexicon(pronunciations, frequency)


@functools.lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The PocketSphinx dictionary, restricted to the words whose frequency is known."""
    from voice_skill.recognizers.sphinx import model_paths, read_pronunciations

    frequency = read_frequencies()
    return lexicon_from(read_pronunciations(model_paths()[1], set(frequency)), frequency)


def similar_words(word: str, lexicon: Lexicon, limit: int = SUBSTITUTIONS_PER_WORD) -> list[tuple[str, float]]:
    """Common words that sound like `word`, closest (then most common) first."""
    own = lexicon.phones(word)
    if not own:
        return []
    longest = max(len(p) for p in own)
    if longest < MIN_PHONES_TO_SUBSTITUTE:
        return []  # "a": any vowel would do; pronouns and articles are swapped by class instead
    allowed = 1.0 if longest <= 3 else 2.0
    best: dict[str, float] = {}
    accent_variants: set[str] = set()
    for phones in own:
        for length in range(max(1, len(phones) - int(allowed)), len(phones) + int(allowed) + 1):
            if length not in lexicon.by_length:
                continue
            owners, rows = lexicon.by_length[length]
            distances = _distances(phones, rows)
            if length == len(phones):
                accent_variants |= {owners[k] for k in _one_vowel_apart(phones, rows)}
            for k in np.flatnonzero(distances <= allowed):
                other = owners[k]
                best[other] = min(best.get(other, 99.0), float(distances[k]))
    # A word one vowel away ("tip" and "tape", "us" and "is") is how the same word sounds in
    # another accent or voice: as a rival it rejects the real phrase, so it is left out.
    for other in accent_variants:
        best.pop(other, None)
    # A homophone ("tip" and "tipp") is left out: the recognizer cannot tell them apart anyway.
    scored = sorted((d, -lexicon.frequency[w], w) for w, d in best.items() if w != word and d > 0)
    return [(w, d) for d, _, w in scored[:limit]]


def _one_vowel_apart(phones: tuple[str, ...], rows: np.ndarray) -> np.ndarray:
    """Rows (pronunciations as long as `phones`) that differ from it in one vowel only."""
    own = np.array([PHONE_INDEX.get(p, -1) for p in phones], dtype=np.int16)
    differs = rows != own
    single = np.flatnonzero(differs.sum(axis=1) == 1)
    where = differs[single].argmax(axis=1)
    both_vowels = IS_VOWEL[rows[single, where]] & IS_VOWEL[own[where]]
    return single[both_vowels]


def extended_words(word: str, lexicon: Lexicon, limit: int = EXTENSIONS_PER_WORD) -> list[str]:
    """Common words that begin with all of `word`'s phones and add one or two: its inflections
    and the like ("asking", "tips"), most common first."""
    found: dict[str, float] = {}
    for phones in lexicon.phones(word):
        if len(phones) < MIN_PHONES_TO_SUBSTITUTE:
            continue
        own = np.array([PHONE_INDEX[p] for p in phones if p in PHONE_INDEX], dtype=np.int16)
        for extra in range(1, MAX_EXTENSION_PHONES + 1):
            if len(phones) + extra not in lexicon.by_length:
                continue
            owners, rows = lexicon.by_length[len(phones) + extra]
            for k in np.flatnonzero((rows[:, : len(own)] == own).all(axis=1)):
                if owners[k] != word:
                    found[owners[k]] = lexicon.frequency[owners[k]]
    return sorted(found, key=lambda w: -found[w])[:limit]


def confusions(trigger: str, lexicon: Lexicon | None = None, exclude: Iterable[str] = ()) -> list[Confusion]:
    """The generated confusion set of one trigger phrase (never a phrase in `exclude`)."""
    lexicon = lexicon or default_lexicon()
    words = trigger.split()
    excluded = set(exclude) | {trigger}
    found: dict[str, Confusion] = {}

    def add(text_words: list[str], kind: str, distance: float = 0.0) -> None:
        text = " ".join(text_words)
        if text and text not in excluded and text not in found and all(lexicon.knows(w) for w in text_words):
            found[text] = Confusion(text, trigger, kind, distance)

    for i, word in enumerate(words):
        for other in extended_words(word, lexicon):
            add(words[:i] + [other] + words[i + 1 :], "extension")
        for other, distance in similar_words(word, lexicon):
            add(words[:i] + [other] + words[i + 1 :], "substitution", distance)
        for group in (PRONOUNS, ARTICLES):
            if word in group:
                for other in group:
                    if other != word:
                        add(words[:i] + [other] + words[i + 1 :], "closed-class")
    for i in range(1, len(words)):
        add(words[i:], "partial")
        if words[i] in ARTICLES:
            for article in ("a", "the"):
                add([article] + words[i + 1 :], "partial")
    for i in range(1, len(words) - 1):
        add(words[:i] + words[i + 1 :], "dropped")
    return list(found.values())


def confusion_phrases(trigger: str, exclude: Iterable[str] = ()) -> list[str]:
    """The texts of `confusions(trigger)`: what the training data and the tests use."""
    return [c.text for c in confusions(trigger, exclude=exclude)]

