"""The 'say' event, built here for both 'run --json' and 'say --json' (docs/events.md
documents every --json event)."""

from __future__ import annotations

from dataclasses import dataclass

from voice_skill.skill import Say


@dataclass(frozen=True)
class Spoken:
    """How an answer was spoken (absent with --no-speak)."""

    seconds: float  # the sound's length: chime, gap and speech
    first_audio_ms: float  # from the decision to the first sample sent to the speaker
    volume: float  # what it was said at
    ahead: bool  # the speech had been rendered ahead


def say_event(say: Say, at: float, spoken: Spoken | None = None) -> dict:
    """The fields of a 'say' event (the writer adds "event"): what asked for it (intent), the
    phrase (kind, id, level, and its text without the name), whom it is addressed to (to: one
    of [couple] names, or None), when (at); when spoken, also the Spoken fields."""
    phrase = say.phrase
    fields = {"intent": say.intent, "kind": phrase.kind, "id": phrase.id, "level": phrase.level, "text": phrase.text, "to": say.to, "at": round(at, 2)}
    if spoken is not None:
        fields.update(seconds=round(spoken.seconds, 2), first_audio_ms=spoken.first_audio_ms, volume=spoken.volume, ahead=spoken.ahead)
    return fields
