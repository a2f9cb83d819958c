"""The skill's decisions: a pure state machine over intents and time.

States: listening -> speaking (after a wake phrase) -> follow-up window (after the answer)
-> listening. Follow-ups ("another one", "repeat that", "stop") and voice changes ("speak
softer") act only in the follow-up window (not while it speaks: see on_intent); a voice change is
confirmed aloud and opens the window again, so "speak softer" and "speak slower" can follow
one another. It never touches audio; it returns actions for the runner to carry out, so it
can be tested exhaustively without a microphone or a speaker.

Time is the audio stream's clock (seconds of audio heard so far), which makes a WAV file and
a live microphone behave the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from voice_skill.intents import WAKE_INTENTS, Intent
from voice_skill.phrases import Phrase

LISTENING = "listening"
SPEAKING = "speaking"
FOLLOW_UP = "follow-up"


@dataclass(frozen=True)
class SkillTiming:
    follow_up_window: float = 8.0  # seconds after an answer in which follow-ups are heard
    self_hearing_tail: float = 0.5  # seconds after speaking in which nothing fires (echo)


@dataclass(frozen=True)
class Say:
    """Acknowledge with the chime, then speak the phrase."""

    intent: str  # what asked for it: question, tip, another, repeat
    phrase: Phrase


@dataclass(frozen=True)
class StopSpeaking:
    pass


@dataclass(frozen=True)
class AdjustVoice:
    """Change how the skill speaks: softer, louder, slower or faster."""

    change: str


@dataclass(frozen=True)
class Ignored:
    intent: str
    reason: str


Action = Say | StopSpeaking | AdjustVoice | Ignored

VOICE_CHANGES = ("softer", "louder", "slower", "faster")


class Skill:
    def __init__(self, pick: Callable[[str], Phrase], timing: SkillTiming = SkillTiming()):
        self._pick = pick
        self.timing = timing
        self.state = LISTENING
        self.last: Phrase | None = None
        self._follow_up_until = float("-inf")
        self._quiet_until = float("-inf")

    def _update(self, at: float) -> None:
        if self.state == FOLLOW_UP and at > self._follow_up_until:
            self.state = LISTENING

    def _answer(self, intent: str, phrase: Phrase) -> list[Action]:
        self.state = SPEAKING
        self.last = phrase
        return [Say(intent, phrase)]

    def on_intent(self, intent: Intent) -> list[Action]:
        at, kind = intent.at, intent.kind
        self._update(at)
        if self.state == SPEAKING:
            # "stop" over its own voice is not acted on: without echo cancellation the
            # microphone hears mostly the answer itself, and its last word was heard as "stop"
            # in the room (a self-made stop that closed the follow-up window). "stop" right
            # after the answer works; cutting an answer short waits for echo cancellation.
            return [Ignored(kind, "speaking")]
        if at < self._quiet_until:
            return [Ignored(kind, "own voice")]
        if kind in WAKE_INTENTS:
            return self._answer(kind, self._pick(kind))
        if self.state != FOLLOW_UP or self.last is None:
            # Follow-ups and voice changes act only right after an answer: anywhere else they
            # are far more likely to be words from a conversation or the television.
            return [Ignored(kind, "no follow-up window")]
        if kind in VOICE_CHANGES:
            self.state = SPEAKING  # the change is confirmed aloud; the window opens again after it
            return [AdjustVoice(kind)]
        if kind == "another":
            return self._answer(kind, self._pick(self.last.kind))
        if kind == "repeat":
            return self._answer(kind, self.last)
        if kind == "stop":
            self.state = LISTENING
            self._follow_up_until = float("-inf")
            return []
        return [Ignored(kind, "unknown intent")]

    def on_speech_done(self, at: float) -> list[Action]:
        """The answer finished (or was cut short) at stream time `at`."""
        if self.state == SPEAKING:
            self.state = FOLLOW_UP
            self._follow_up_until = at + self.timing.follow_up_window
        self._quiet_until = at + self.timing.self_hearing_tail
        return []

    def state_at(self, at: float) -> str:
        self._update(at)
        return self.state

    @property
    def speaking(self) -> bool:
        return self.state == SPEAKING
