"""Choosing the next phrase: the no-repeat bag, minus skipped phrases, now and then a favourite.

The skill asks with a Wanted (kind, level, the day); the Picker answers from the PhraseBag,
leaves out what was skipped in the last 30 days, and lets a favourite come back sooner than
the bag would bring it, at most one answer in five.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from voice_skill.memory import Memory
from voice_skill.phrases import ContentFilter, Phrase, PhraseBag

FAVORITE_EVERY = 5  # at most one answer in this many is a favourite brought back early
FAVORITE_CHANCE = 0.5  # the chance it is, once allowed


@dataclass(frozen=True)
class Wanted:
    """What the skill asks the picker for."""

    kind: str  # question | tip
    level: str | None  # "light" | "deeper"; None: any level the settings allow
    today: date  # local date (skips last 30 days)
    not_id: str | None = None  # the phrase just said: a favourite does not come straight back
    timed: bool = True  # False: no timed moments (where nothing would keep the time, as in 'say')


class Picker:
    def __init__(self, bag: PhraseBag, memory: Memory, allowed: ContentFilter = ContentFilter(), rng: random.Random | None = None):
        self.bag = bag
        self.memory = memory
        self.allowed = allowed
        self._rng = rng or random.Random()

    def __call__(self, wanted: Wanted) -> Phrase:
        skipped = self.memory.skipped_on(wanted.today)
        if not wanted.timed:
            skipped |= self.bag.timed_ids()
        favorite = self._favorite(wanted, skipped)
        if favorite is not None:
            self.memory.answered(favorite_returned=True)
            return favorite
        phrase = self.bag.draw(wanted.kind, self.allowed, wanted.level, skipped)
        self.memory.answered(favorite_returned=False)
        return phrase

    def peek(self, wanted: Wanted) -> Phrase | None:
        """The phrase a call with `wanted` would answer now, without taking it (None if no
        phrase of the kind is enabled). Exact: the random draws are replayed by the call."""
        state = self._rng.getstate()
        try:
            skipped = self.memory.skipped_on(wanted.today)
            if not wanted.timed:
                skipped |= self.bag.timed_ids()
            favorite = self._favorite(wanted, skipped)
            if favorite is not None:
                return favorite
            return self.bag.peek(wanted.kind, self.allowed, wanted.level, skipped)
        finally:
            self._rng.setstate(state)

    def _favorite(self, wanted: Wanted, skipped: frozenset[str]) -> Phrase | None:
        if self.memory.answers_since_favorite < FAVORITE_EVERY - 1:
            return None
        candidates = []
        for pid in self.memory.favorites:
            phrase = self.bag.get(pid)
            if phrase is None or pid in skipped or pid == wanted.not_id or phrase.kind != wanted.kind:
                continue
            if not self.allowed.allows(phrase) or wanted.level not in (None, phrase.level):
                continue
            candidates.append(phrase)
        if not candidates or self._rng.random() >= FAVORITE_CHANCE:
            return None
        return self._rng.choice(candidates)
