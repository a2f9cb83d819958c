"""What the couple told the skill across nights: skipped phrases, favourites, whose turn it is.

A small JSON state file (ritual.json, next to the phrase bag's) holding phrase ids, dates,
one count and a name from [couple] names, nothing else:

    {"version": 1, "skipped": {"q-us-04": "2026-11-26"}, "favorites": ["t-together-05"],
     "answers_since_favorite": 3, "next_turn": "Alex"}

A corrupt or unwritable file never stops the skill: it is logged and the skill goes on
with what it has in memory.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path

from voice_skill.state_file import write_atomically

log = logging.getLogger(__name__)

SKIP_DAYS = 30  # a skipped phrase is not said again for this many days


class Memory:
    def __init__(self, state_file: Path | None = None):
        self._state_file = state_file
        self._persist = state_file is not None
        self.skipped: dict[str, date] = {}
        self.favorites: list[str] = []
        self.answers_since_favorite = 0
        self.next_turn: str | None = None
        self._load()

    # ---------------------------------------------------------------- what it remembers

    def skip(self, phrase_id: str, on: date) -> None:
        self.skipped[phrase_id] = on
        self.favorites = [f for f in self.favorites if f != phrase_id]  # a skipped favourite no longer is one
        self._save()

    def skipped_on(self, today: date) -> frozenset[str]:
        """Ids skipped less than SKIP_DAYS days before `today` (older skips are forgotten)."""
        expired = [pid for pid, day in self.skipped.items() if today >= day + timedelta(days=SKIP_DAYS)]
        for pid in expired:
            del self.skipped[pid]
        if expired:
            self._save()
        return frozenset(self.skipped)

    def add_favorite(self, phrase_id: str) -> None:
        if phrase_id not in self.favorites:
            self.favorites.append(phrase_id)
        self.skipped.pop(phrase_id, None)
        self._save()

    def answered(self, favorite_returned: bool) -> None:
        self.answers_since_favorite = 0 if favorite_returned else self.answers_since_favorite + 1
        self._save()

    def set_next_turn(self, name: str | None) -> None:
        self.next_turn = name
        self._save()

    # ---------------------------------------------------------------- the file

    def _load(self) -> None:
        if self._state_file is None:
            return
        try:
            raw = self._state_file.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("cannot read %s (%s); skips and favourites start afresh", self._state_file, exc.strerror)
            return
        try:
            data = json.loads(raw)
            skipped = {str(pid): date.fromisoformat(day) for pid, day in data.get("skipped", {}).items()}
            favorites = data.get("favorites", [])
            count = data.get("answers_since_favorite", 0)
            turn = data.get("next_turn")
            if not (all(isinstance(f, str) for f in favorites) and isinstance(count, int) and (turn is None or isinstance(turn, str))):
                raise ValueError("wrong types")
        except (ValueError, TypeError, AttributeError):  # UnicodeDecodeError is a ValueError
            log.warning("%s is corrupt; skips and favourites start afresh", self._state_file)
            return
        self.skipped, self.favorites, self.answers_since_favorite, self.next_turn = skipped, list(favorites), count, turn

    def _save(self) -> None:
        if not self._persist or self._state_file is None:
            return
        data = {
            "version": 1,
            "skipped": {pid: day.isoformat() for pid, day in sorted(self.skipped.items())},
            "favorites": self.favorites,
            "answers_since_favorite": self.answers_since_favorite,
            "next_turn": self.next_turn,
        }
        try:
            write_atomically(self._state_file, json.dumps(data, indent=1))
        except OSError as exc:
            log.warning("cannot save %s (%s); skips and favourites last until the skill restarts", self._state_file, exc.strerror)
            self._persist = False
