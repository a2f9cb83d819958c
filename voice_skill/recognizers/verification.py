"""Verification: a second, closer look at a candidate's window only.

The window runs from a little before the candidate's start to the end of the utterance; the
checks never see the whole stream, so their cost does not grow with speech. It is decoded
twice, each time with the same coarse phone loop allowed before the phrase:

1. as a wake phrase: which wake phrase fits best, and how well each of its words fits the
   audio, per frame, relative to the best-scoring sounds of each frame (PocketSphinx
   normalises scores that way). The worst single word matters as much as the mean: a
   sound-alike differs in one word ("give us a kiss");
2. as anything else that could end the utterance: the decoys of the trigger table and the
   generated sound-alikes (voice_skill.recognizers.confusions: a word swapped for one that
   sounds like it, or for another pronoun or article, a word left out, or only the end of the
   phrase, "a question", "the tip", after other words).

Each is decoded both with and without the phone loop (the loop can crowd a phrase said on its
own out of the search beam), and the better-scoring decode of each side names its best phrase.
The margin is how much better, per frame, the best wake phrase explains the window than the
best of the rest does: a likelihood ratio between "a wake phrase ends here" and "something that
sounds like one ends here". Below zero, something that is not a wake phrase fits better.

The two finalists are scored again, each in a grammar of its own (that phrase, with and
without the phone loop before it), before they are compared. PocketSphinx scores every frame
relative to the best of the sounds its search is considering at that frame, so scores from a
search over six phrases and one over six hundred are not comparable: the big search's
scores come out lower for the same fit, which made every wake phrase look better than its
rivals. Two searches of the same shape are.

Commands ("another one", "speak softer") must be the whole utterance; they get the plain
fit check only.

An utterance short enough to be a phrase said by itself gets one more look, the test of the
engine before v2: the whole utterance decoded in one grammar of every phrase of the trigger
table and its decoys (no phone loop, no generated sound-alikes), its best phrase and how well
that fits (`verify_whole`). The fusion rule may accept a phrase on that alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from voice_skill.recognizers.sphinx import Grammar, SphinxDecoder, base_word, frame_score, is_filler, total_score, word_scores

WAKE_SEARCH = "wake"
WAKE_WHOLE_SEARCH = "wake-whole"
OTHER_SEARCH = "other"
OTHER_WHOLE_SEARCH = "other-whole"
DECOY_SEARCH = "decoy"
DECOY_WHOLE_SEARCH = "decoy-whole"
COMMAND_SEARCH = "command"
WHOLE_SEARCH = "whole"  # every phrase of the table and its decoys, as the whole utterance
FINALIST_SEARCH = "finalist:"  # + the phrase: a grammar of one phrase, for a fair comparison
FINALIST_SEARCHES_KEPT = 96  # the least recently used are removed beyond this
MIN_MARGIN = -9.0  # the margin when only the rival survives its search (and +9 for the wake phrase)
FRAME_SECONDS = 0.01
ALL_RIVALS, DECOYS_ONLY, BOTH = "all", "decoys", "both"  # what verify_wake weighs the phrase against


@dataclass(frozen=True)
class PhoneticEvidence:
    text: str  # the phrase found in the window
    frame_score: float  # mean log acoustic score per frame of its words
    worst_word: float  # the lowest per-frame score of any single word
    phones_per_second: float
    margin: float | None = None  # per frame; < 0: something that is not a wake phrase fits better
    rival: str | None = None  # the best-fitting non-wake phrase
    rival_is_decoy: bool = False  # ... and it is one of the trigger table's own decoys
    phrase_end: float | None = None  # seconds into the window where the phrase's last word ends
    decoy_margin: float | None = None  # the margin over the trigger table's decoys alone
    decoy: str | None = None  # the best-fitting decoy
    alone: bool = False  # the utterance is no longer than the phrase said by itself could be
    whole: str | None = None  # the table's phrase (or decoy) that best fits the whole utterance
    whole_score: float | None = None  # ... and its fit (mean log score per frame)
    whole_rate: float = 0.0  # ... and its phones per second
    whole_wake: bool = False  # ... and it is a wake phrase

    def describe(self) -> str:
        text = f"fit {self.frame_score:.2f}/frame (worst word {self.worst_word:.2f}), {self.phones_per_second:.1f} phones/s"
        if self.margin is not None:
            text += f", margin {self.margin:+.3f} over {'the decoy ' if self.rival_is_decoy else ''}{self.rival!r}"
        if self.decoy_margin is not None:
            text += f", margin {self.decoy_margin:+.3f} over the decoys ({self.decoy!r})"
        if self.margin is None and self.decoy_margin is None:
            text += ", margin not weighed"
        if self.alone:
            text += ", said by itself"
        if self.whole is not None:
            text += f"; the whole utterance: {self.whole!r} fit {self.whole_score:.2f}/frame, {self.whole_rate:.1f} phones/s"
        return text


def _phrase(hypothesis: str) -> str:
    return " ".join(base_word(w) for w in hypothesis.split() if not is_filler(w))


class PhoneticVerifier:
    def __init__(self, decoder: SphinxDecoder, wake: tuple[str, ...], commands: tuple[str, ...], phone_counts: dict[str, int], decoys: tuple[str, ...] = ()):
        """The decoys are rivals from the start; the generated sound-alikes join with add_rivals."""
        self._decoder = decoder
        self._decoys = set(decoys)
        self._phone_counts = phone_counts
        self._wake = set(wake)
        self._commands = set(commands)
        decoder.add_grammar(WAKE_SEARCH, Grammar(ending=wake))
        decoder.add_grammar(WAKE_WHOLE_SEARCH, Grammar(whole=wake, filler=False))
        self._rivals: tuple[str, ...] = ()
        self.add_rivals(tuple(decoys))
        if decoys:
            decoder.add_grammar(DECOY_SEARCH, Grammar(ending=tuple(decoys)))
            decoder.add_grammar(DECOY_WHOLE_SEARCH, Grammar(whole=tuple(decoys), filler=False))
        if commands:
            decoder.add_grammar(COMMAND_SEARCH, Grammar(whole=commands + wake, filler=False))
        decoder.add_grammar(WHOLE_SEARCH, Grammar(whole=tuple(dict.fromkeys(wake + commands + tuple(decoys))), filler=False))
        self._finalists: dict[str, None] = {}  # phrases with a search of their own, oldest first

    def add_rivals(self, rivals: tuple[str, ...]) -> None:
        """More phrases to weigh the wake phrase against (their words must be in the
        decoder's dictionary entries)."""
        rivals = tuple(dict.fromkeys(self._rivals + tuple(rivals)))
        if not rivals or rivals == self._rivals:
            return
        if self._rivals:
            self._decoder.remove_grammar(OTHER_SEARCH)
            self._decoder.remove_grammar(OTHER_WHOLE_SEARCH)
        self._rivals = rivals
        self._decoder.add_grammar(OTHER_SEARCH, Grammar(ending=rivals))
        self._decoder.add_grammar(OTHER_WHOLE_SEARCH, Grammar(whole=rivals, filler=False))

    def _finalist_score(self, phrase: str, pcm: bytes) -> tuple[float, list]:
        """The window's best score with `phrase` at its end, decoded in grammars of that phrase
        alone: once after the phone loop, once as the whole window (-inf and no segments if
        neither path survives the search beam: the phrase is not there)."""
        best: tuple[float, list] = (float("-inf"), [])
        for shape, grammar in (("whole", Grammar(whole=(phrase,), filler=False)), ("ending", Grammar(ending=(phrase,)))):
            key = f"{FINALIST_SEARCH}{shape}:{phrase}"
            if key in self._finalists:
                self._finalists.pop(key)
            else:
                if len(self._finalists) >= FINALIST_SEARCHES_KEPT:
                    oldest = next(iter(self._finalists))
                    self._finalists.pop(oldest)
                    self._decoder.remove_grammar(oldest)
                self._decoder.add_grammar(key, grammar)
            self._finalists[key] = None
            _, segments = self._decoder.decode(key, pcm)
            if segments and total_score(segments) > best[0]:
                best = (total_score(segments), segments)
        return best

    def _evidence(self, text: str, segments) -> PhoneticEvidence | None:
        words = word_scores(segments)
        if not words:
            return None
        seconds = (words[-1].end - words[0].start + 1) * FRAME_SECONDS
        rate = self._phone_counts.get(text, 0) / seconds if seconds > 0 else 0.0
        return PhoneticEvidence(text, frame_score(words), min(w.per_frame for w in words), rate, phrase_end=(words[-1].end + 1) * FRAME_SECONDS)

    def _best(self, searches: tuple[str, ...], pcm: bytes, phrases: set[str] | None) -> tuple[str, list]:
        """The best-scoring decode of the window among these searches that ends in a phrase."""
        best: tuple[float, str, list] | None = None
        for search in searches:
            hypothesis, segments = self._decoder.decode(search, pcm)
            text = _phrase(hypothesis)
            if not segments or (phrases is not None and text not in phrases) or not text:
                continue
            score = total_score(segments)
            if best is None or score > best[0]:
                best = (score, text, segments)
        return (best[1], best[2]) if best else ("", [])

    def verify_wake(self, pcm: bytes, compare=lambda evidence: True, against: str = ALL_RIVALS) -> PhoneticEvidence | None:
        """The best wake phrase at the end of this window, with its margin over the rest.
        `compare(evidence)` says whether the rivals are worth weighing (they are the costly
        part); when it says no, the evidence comes back without a margin. `against`: weigh
        all rivals (the decoys and the generated sound-alikes), the decoys alone, or both
        (each margin in its own field)."""
        text, segments = self._best((WAKE_SEARCH, WAKE_WHOLE_SEARCH), pcm, self._wake)
        if not text:
            return None
        evidence = self._evidence(text, segments)
        if evidence is None or not (self._rivals or self._decoys) or not compare(evidence):
            return evidence
        finalists: dict[str, tuple[float, list]] = {}  # one decode per phrase for both margins
        if against in (ALL_RIVALS, BOTH) and self._rivals:
            margin, other = self._margin(text, pcm, (OTHER_SEARCH, OTHER_WHOLE_SEARCH), finalists)
            if margin is not None:
                evidence = replace(evidence, margin=margin, rival=other, rival_is_decoy=other in self._decoys)
        if against in (DECOYS_ONLY, BOTH) and self._decoys:
            margin, decoy = self._margin(text, pcm, (DECOY_SEARCH, DECOY_WHOLE_SEARCH), finalists)
            if margin is not None:
                evidence = replace(evidence, decoy_margin=margin, decoy=decoy)
        return evidence

    def _margin(
        self, text: str, pcm: bytes, searches: tuple[str, ...], finalists: dict[str, tuple[float, list]]
    ) -> tuple[float | None, str | None]:
        """How much better, per frame, the wake phrase fits the window than the best phrase of
        these searches (None if none of them reaches a phrase). `finalists` holds the finalist
        scores already decoded in this window, by phrase (the wake phrase is weighed against
        the rivals and against the decoys: its own score is the same both times)."""
        other, other_segments = self._best(searches, pcm, None)
        if not other_segments:
            return None, None
        for phrase in (text, other):
            if phrase not in finalists:
                finalists[phrase] = self._finalist_score(phrase, pcm)
        wake_score, wake_segments = finalists[text]
        other_score, other_segments = finalists[other]
        if not wake_segments and not other_segments:
            return None, None
        frames = sum(s.end_frame - s.start_frame + 1 for s in wake_segments or other_segments) or 1
        return max(MIN_MARGIN, min(-MIN_MARGIN, (wake_score - other_score) / frames)), other

    def verify_whole(self, pcm: bytes) -> PhoneticEvidence | None:
        """The phrase of the table (or decoy) that the whole window is, and how well it fits
        (the test of the engine before v2); None if the search reaches none."""
        hypothesis, segments = self._decoder.decode(WHOLE_SEARCH, pcm)
        return self._evidence(_phrase(hypothesis), segments) if hypothesis else None

    def verify_command(self, pcm: bytes) -> PhoneticEvidence | None:
        """The phrase this whole window holds, if it is a command."""
        hypothesis, segments = self._decoder.decode(COMMAND_SEARCH, pcm)
        if hypothesis not in self._commands:
            return None
        return self._evidence(hypothesis, segments)
