"""PocketSphinx plumbing shared by the wake engine's stages: the bundled model, the
dictionary, grammars and decoders. No decisions are made here."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

FILLER_PHONES = ("AH", "S", "T", "N", "IY", "AA")  # a coarse phone loop for speech before a phrase
FILLER_NOISES = ("+SPN+", "+NSN+")  # the model's own speech-like and noise fillers
FILLER_PREFIX = "filler_"  # dictionary keys of the filler "words"; never a real word
FEW_WORDS = 500  # up to this many words, read_pronunciations finds their lines with one regular expression


def model_paths() -> tuple[str, str]:
    """(acoustic model folder, pronunciation dictionary) of the English model in the package."""
    from pocketsphinx import get_model_path

    base = os.path.join(get_model_path(), "en-us")
    return os.path.join(base, "en-us"), os.path.join(base, "cmudict-en-us.dict")


def read_pronunciations(dictionary: str, words: set[str]) -> dict[str, list[tuple[str, str]]]:
    """The dictionary entries of these words: word -> [(entry, phones)], e.g. ("a(2)", "EY").
    The few words of a grammar are found by one regular expression over the whole file (a
    pass in C, a tenth of the time of a pass line by line in Python: it is on the way to
    listening); thousands of words, line by line, as the file is read (holding its 135,000
    lines at once cost 20 MB of peak memory, on the way to listening too)."""
    found: dict[str, list[tuple[str, str]]] = {}
    with open(dictionary, encoding="utf-8") as file:
        if len(words) <= FEW_WORDS:
            alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
            lines = [m.group(0) for m in re.finditer(rf"^(?:{alternatives})(?:\(\d+\))? .*$", file.read(), re.M)] if words else []
        else:
            lines = file
        for line in lines:
            entry, _, phones = line.partition(" ")
            word = entry.split("(", 1)[0]
            if word in words:
                found.setdefault(word, []).append((entry, phones.strip()))
    return found


def filler_entries() -> list[tuple[str, str]]:
    phones = [(f"{FILLER_PREFIX}{p.lower()}", p) for p in FILLER_PHONES]
    noises = [(f"{FILLER_PREFIX}{n.strip('+').lower()}", n) for n in FILLER_NOISES]
    return phones + noises


def is_filler(word: str) -> bool:
    return word.startswith((FILLER_PREFIX, "<", "[", "(NULL)"))


def base_word(entry: str) -> str:
    """'a(2)' -> 'a'."""
    return entry.split("(", 1)[0]


def phrase_automaton(phrases, first_state: int) -> tuple[int, list[tuple[int, int | None, str]], list[int], int]:
    """The smallest automaton that accepts exactly these phrases (word by word): phrases that
    share a beginning or an end share states, so hundreds of sound-alikes that differ in one
    word cost little more than their distinct words. Returns (start state, arcs (from, to,
    word), accepting states, next free state number); `to` is None for "the phrase ends".
    """
    trie: dict = {}
    for phrase in phrases:
        node = trie
        for word in phrase.split():
            node = node.setdefault(word, {})
        node[None] = {}
    signature_of: dict[int, tuple] = {}
    numbering: dict[tuple, int] = {}
    arcs: list[tuple[int, int | None, str]] = []
    accepting: list[int] = []
    next_state = first_state

    def number(node: dict) -> int:
        nonlocal next_state
        children = tuple(sorted((word, number(child)) for word, child in node.items() if word is not None))
        signature = (None in node, children)
        if signature not in numbering:
            numbering[signature] = state = next_state
            next_state += 1
            arcs.extend((state, target, word) for word, target in children)
            if None in node:
                accepting.append(state)
        return numbering[signature]

    start = number(trie)
    del signature_of
    return start, arcs, accepting, next_state


@dataclass(frozen=True)
class Grammar:
    """A grammar: whole-utterance phrases, and phrases that may follow other speech.

    whole: phrases heard only as the whole utterance (follow-up and voice commands);
    ending: phrases that may also end a longer utterance (wake phrases and their decoys):
    anything before them is taken by a coarse phone loop.
    """

    whole: tuple[str, ...] = ()
    ending: tuple[str, ...] = ()
    filler: bool = True

    def jsgf(self) -> str:
        def alternatives(phrases) -> str:
            return " | ".join(f"( {p} )" for p in phrases)

        rules = ["#JSGF V1.0;", "grammar voice_skill;"]
        top = []
        everything = tuple(self.whole) + tuple(self.ending)
        if everything:
            top.append(f"( {alternatives(everything)} )")
        if self.filler and self.ending:
            rules.append(f"<filler> = {' | '.join(k for k, _ in filler_entries())};")
            top.append(f"( <filler>+ ( {alternatives(self.ending)} ) )")
        rules.append(f"public <command> = {' | '.join(top)};")
        return "\n".join(rules) + "\n"

    def words(self) -> set[str]:
        return {w for p in tuple(self.whole) + tuple(self.ending) for w in p.split()}

    def fsg(self) -> tuple[int, int, list[tuple]]:
        """(start state, final state, transitions) for Decoder.create_fsg: a phrase automaton
        for the whole phrases, and one for the ending phrases, optionally after the phone loop."""
        start, final, loop = 0, 1, 2
        transitions: list[tuple] = []
        next_state = 3
        fillers = [key for key, _ in filler_entries()]
        for phrases, after_loop in ((self.whole, False), (self.ending, self.filler)):
            if not phrases:
                continue
            entry, arcs, accepting, next_state = phrase_automaton(phrases, next_state)
            transitions.append((start, entry, 1.0))
            if after_loop:
                for word in fillers:
                    transitions.append((start, loop, 1.0 / len(fillers), word))
                    transitions.append((loop, loop, 1.0 / len(fillers), word))
                transitions.append((loop, entry, 1.0))
            transitions += [(a, b, 1.0, word) for a, b, word in arcs]
            transitions += [(state, final, 1.0) for state in accepting]
        return start, final, transitions


SCORE_SHIFT = 1024.0  # PocketSphinx keeps acoustic scores shifted right by 10 bits (SENSCR_SHIFT)


class SphinxDecoder:
    """One PocketSphinx decoder holding several named grammars ("searches").

    Each decoder loads the acoustic model (about 45 MB), so the stages share one and take
    turns: the spotter's search is active during an utterance, the verifier's between them.
    Only the grammars' words are added: the full 130,000-word CMU dictionary would cost
    about 80 MB and 0.4 s. No lattice is kept: the word scores of the best path come from
    the search's own back-pointers, which is all the verifier needs.
    """

    def __init__(self, hmm: str, pronunciations: dict[str, list[tuple[str, str]]], beam: float = 1e-60):
        from pocketsphinx import Decoder

        self._decoder = Decoder(hmm=hmm, dict=os.devnull, loglevel="FATAL", beam=beam, pbeam=beam, wbeam=beam * 1e20, bestpath=False)
        self._pronunciations = pronunciations
        self._words: set[str] = set()
        self.active: str | None = None

    def know(self, pronunciations: dict[str, list[tuple[str, str]]]) -> None:
        """More dictionary entries that grammars added later may use."""
        self._pronunciations = {**self._pronunciations, **pronunciations}

    def _add_words(self, words: set[str], fillers: bool) -> None:
        entries = [entry for word in sorted(words - self._words) for entry in self._pronunciations[word]]
        if fillers and FILLER_PREFIX + FILLER_PHONES[0].lower() not in self._words:
            entries += filler_entries()
            self._words |= {key for key, _ in filler_entries()}
        for i, (key, phones) in enumerate(entries):
            self._decoder.add_word(key, phones, i == len(entries) - 1)
        self._words |= words

    def add_grammar(self, name: str, grammar: Grammar) -> None:
        self._add_words(grammar.words(), grammar.filler and bool(grammar.ending))
        start, final, transitions = grammar.fsg()
        fsg = self._decoder.create_fsg(name, start, final, transitions)
        self._decoder.add_fsg(name, fsg)

    def remove_grammar(self, name: str) -> None:
        self._decoder.remove_search(name)

    def add_jsgf(self, name: str, jsgf: str, words: set[str]) -> None:
        self._add_words(words, False)
        self._decoder.add_jsgf_string(name, jsgf)

    def start(self, search: str) -> None:
        if self._decoder.current_search() != search:
            self._decoder.activate_search(search)
        self._decoder.start_utt()
        self.active = search

    def process(self, pcm: bytes, full_utt: bool = False) -> None:
        self._decoder.process_raw(pcm, no_search=False, full_utt=full_utt)

    def end(self) -> tuple[str, list]:
        """End the utterance: (hypothesis, segments of the best path)."""
        self._decoder.end_utt()
        self.active = None
        hyp = self._decoder.hyp()
        if hyp is None or not hyp.hypstr:
            return "", []
        return hyp.hypstr, [s for s in self._decoder.seg() or () if s.word != "(NULL)"]

    def decode(self, search: str, pcm: bytes) -> tuple[str, list]:
        """Decode a whole window with one search. The window leaves the decoder's cepstral
        mean (its running estimate of the channel, updated at the end of every utterance) as
        it found it: every second look at a window starts from the same estimate, whichever
        other windows were or were not decoded before it, and the live search never learns
        from audio it has already heard."""
        cmn = self._decoder.get_cmn()
        try:
            self.start(search)
            self.process(pcm, full_utt=True)
            return self.end()
        finally:
            self._decoder.set_cmn(cmn)


@dataclass(frozen=True)
class WordScore:
    word: str
    start: int  # frames (10 ms)
    end: int
    score: float  # acoustic log score of the word, relative to the best senone per frame

    @property
    def frames(self) -> int:
        return self.end - self.start + 1

    @property
    def per_frame(self) -> float:
        return self.score / self.frames


def log_score(segment) -> float:
    """A segment's acoustic log score, unshifted."""
    return math.log(segment.ascore) * SCORE_SHIFT if segment.ascore > 0 else -1e4


def total_score(segments) -> float:
    """The acoustic log score of a whole decoded window (silence and fillers included)."""
    return sum(log_score(s) for s in segments)


def word_scores(segments) -> list[WordScore]:
    """The words of a decoded hypothesis with their acoustic scores (fillers left out)."""
    found = []
    for seg in segments or ():
        if is_filler(seg.word):
            continue
        found.append(WordScore(base_word(seg.word), seg.start_frame, seg.end_frame, log_score(seg)))
    return found


def frame_score(words: list[WordScore]) -> float:
    """Mean log acoustic score per frame over the words (fillers left out)."""
    frames = sum(w.frames for w in words)
    return sum(w.score for w in words) / frames if frames else float("-inf")
