"""The trigger table (which sentences fire which intent) and matching of what was heard.

The table is data (phrases/triggers.toml or a user file); recognizers get its phrases and
decoys as their search space, and the matcher maps a recognized sentence to an intent,
at most once per utterance.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from voice_skill.errors import UserError
from voice_skill.recognizers.base import Heard

WAKE_INTENTS = ("question", "tip")


def normalize(text: str) -> str:
    """Lower case, words only, single spaces: how phrases are compared."""
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"[^\w' ]+", " ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class TriggerTable:
    intents: dict[str, tuple[str, ...]]  # intent -> phrases
    follow_up: frozenset[str]  # intents valid only inside the follow-up window
    decoys: tuple[str, ...] = ()

    def phrases(self) -> list[str]:
        return [p for phrases in self.intents.values() for p in phrases]

    def intent_of(self, text: str) -> str | None:
        said = normalize(text)
        for intent, phrases in self.intents.items():
            if said in phrases:
                return intent
        return None


def load_triggers(path: Path) -> TriggerTable:
    where = str(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{where}: triggers file not found; pass an existing file or remove the option") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{where}: cannot read the triggers file ({exc}); save it as UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{where}: not valid TOML ({exc}); fix the file") from None
    table = data.get("intent")
    if not isinstance(table, dict) or not table:
        raise UserError(f"{where}: no [intent.NAME] tables; see phrases/triggers.toml for the format")
    intents: dict[str, tuple[str, ...]] = {}
    follow_up: set[str] = set()
    seen: dict[str, str] = {}
    for name, spec in table.items():
        phrases = spec.get("phrases") if isinstance(spec, dict) else None
        if not isinstance(phrases, list) or not phrases or not all(isinstance(p, str) and normalize(p) for p in phrases):
            raise UserError(f"{where}: [intent.{name}] needs phrases = [\"...\"] with at least one sentence")
        flag = spec.get("follow_up", False)
        if not isinstance(flag, bool):
            raise UserError(f"{where}: [intent.{name}] follow_up must be true or false")
        normalized = tuple(normalize(p) for p in phrases)
        for p in normalized:
            if p in seen:
                raise UserError(f"{where}: phrase {p!r} is in both [intent.{seen[p]}] and [intent.{name}]")
            seen[p] = name
        intents[name] = normalized
        if flag:
            follow_up.add(name)
    decoys_spec = data.get("decoys", {})
    decoys = decoys_spec.get("phrases", []) if isinstance(decoys_spec, dict) else None
    if not isinstance(decoys, list) or not all(isinstance(p, str) for p in decoys):
        raise UserError(f"{where}: [decoys] phrases must be a list of sentences")
    clean_decoys = tuple(d for d in (normalize(p) for p in decoys) if d and d not in seen)
    return TriggerTable(intents, frozenset(follow_up), clean_decoys)


@dataclass(frozen=True)
class Intent:
    kind: str
    at: float  # seconds into the audio stream when it fired
    text: str  # what was recognized (never logged at the default level)
    confidence: float


@dataclass
class IntentMatcher:
    """Maps recognizer results to intents; one utterance fires at most one intent."""

    table: TriggerTable
    _fired_utterances: set[int] = field(default_factory=set)

    def match(self, heard: Heard) -> Intent | None:
        if heard.utterance in self._fired_utterances:
            return None
        intent = self.table.intent_of(heard.text)
        if intent is None:
            return None
        self._fired_utterances.add(heard.utterance)
        if len(self._fired_utterances) > 64:
            self._fired_utterances = {u for u in self._fired_utterances if u >= heard.utterance - 8}
        return Intent(intent, heard.at, heard.text, heard.confidence)
