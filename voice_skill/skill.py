"""The skill's decisions: a pure state machine over intents and time.

States: listening -> speaking (after a wake phrase) -> follow-up window (after the answer)
-> listening; after a timed moment's answer, a timer state comes between speaking and the
window. Follow-ups ("another one", "repeat that", "stop") and voice changes ("speak
softer") act only in the follow-up window (not while it speaks: see on_intent); a voice change is
confirmed aloud and opens the window again, so "speak softer" and "speak slower" can follow
one another. It never touches audio; it returns actions for the runner to carry out, so it
can be tested exhaustively without a microphone or a speaker.

Time is the audio stream's clock (seconds of audio heard so far), which makes a WAV file and
a live microphone behave the same way. What needs the time of day (quiet hours, the morning,
30 days for a skipped phrase) reads it from an injected StreamClock, a value.

The bedtime ritual, all follow-ups: "go deeper" answers from the deeper level and the session
stays there until "something lighter" or 30 idle minutes; "skip" answers at once and keeps the
skipped phrase away for 30 days; "I like that one" keeps it as a favourite; "goodnight" says
goodnight and ignores wake phrases until the morning. A timed moment (a phrase with
`seconds`) is followed by that long a silence, listening only for "stop", then "time's up".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable

from voice_skill.intents import WAKE_INTENTS, Intent
from voice_skill.night import QuietRules, StreamClock, next_time_of_day, within
from voice_skill.phrases import Phrase
from voice_skill.picker import Wanted

LISTENING = "listening"
SPEAKING = "speaking"
FOLLOW_UP = "follow-up"
TIMER = "timer"  # a timed moment: silent, listening only for "stop"


@dataclass(frozen=True)
class SkillTiming:
    follow_up_window: float = 8.0  # seconds after an answer in which follow-ups are heard
    self_hearing_tail: float = 0.5  # seconds after speaking in which nothing fires (echo)
    level_idle_reset: float = 30 * 60  # seconds without a word to it after which "deeper" ends


# A fixed midday clock for callers that do not care about the time of day (the runner passes
# the real one).
MIDDAY = StreamClock(datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc), timezone.utc)


@dataclass(frozen=True)
class Say:
    """Acknowledge with the chime, then speak the phrase."""

    intent: str  # what asked for it: question, tip, another, repeat, deeper, lighter, skip
    phrase: Phrase
    to: str | None = None  # a question addressed to one of [couple] names ("Sam, ...")

    @property
    def text(self) -> str:
        """What is said: the phrase, addressed to `to` if there is one."""
        return f"{self.to}, {addressed(self.phrase.text)}" if self.to else self.phrase.text


def addressed(text: str) -> str:
    """A phrase after a name and a comma: "Sam, what ..." (its first word lower-cased unless
    that word is "I", "I'm"..., or written in capitals, like a name or "TV")."""
    first = text.split(" ", 1)[0]
    ordinary = first[:1].isupper() and not first[1:2].isupper() and not first.startswith("I'") and (len(first) > 1 or first == "A")
    return first[0].lower() + text[1:] if ordinary else text


def take_turn(names: tuple[str, ...], next_turn: str | None) -> tuple[str | None, str | None]:
    """Whom a question is addressed to ([couple] names in turn: next_turn, or the first name
    if next_turn is none of them) and whose turn comes after; (None, None) without names."""
    if not names:
        return None, None
    to = next_turn if next_turn in names else names[0]
    return to, names[(names.index(to) + 1) % len(names)]


@dataclass(frozen=True)
class NextTurn:
    """Whose turn the next question is (kept across nights)."""

    name: str


@dataclass(frozen=True)
class Forget:
    """Keep this phrase away (it was skipped on `on`)."""

    phrase: Phrase
    on: date


@dataclass(frozen=True)
class Favorite:
    """Remember this phrase as a favourite, and say so briefly."""

    phrase: Phrase


@dataclass(frozen=True)
class Goodnight:
    """Say goodnight; wake phrases are ignored until `quiet_until` (local time)."""

    quiet_until: datetime


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


@dataclass(frozen=True)
class StartTimer:
    """A timed moment begins: silence for `seconds`."""

    phrase: Phrase
    seconds: int


@dataclass(frozen=True)
class TimeUp:
    """The timed moment is over: a soft chime and "time's up"."""

    phrase: Phrase


@dataclass(frozen=True)
class StopTimer:
    """"stop" during a timed moment: it ends now, without the chime."""

    phrase: Phrase


Action = Say | StopSpeaking | AdjustVoice | Ignored | Forget | Favorite | Goodnight | StartTimer | TimeUp | StopTimer | NextTurn

VOICE_CHANGES = ("softer", "louder", "slower", "faster")
# Commands that make sense while it speaks, acted on then only with barge-in (echo cancellation):
# "stop" cuts the answer, the others cut it and do what they do right after an answer.
BARGE_IN_INTENTS = frozenset({"stop", "another", "repeat", *VOICE_CHANGES})


class Skill:
    def __init__(
        self,
        pick: Callable[[Wanted], Phrase],
        timing: SkillTiming = SkillTiming(),
        clock: StreamClock = MIDDAY,
        quiet: QuietRules = QuietRules(),
        names: tuple[str, ...] = (),
        next_turn: str | None = None,
        peek: Callable[[Wanted], Phrase | None] | None = None,
        barge_in: bool = False,
    ):
        self._pick = pick
        self.barge_in = barge_in  # the microphone hears past its own voice (echo cancellation)
        self._peek = peek  # what pick would answer now, without taking it (for upcoming())
        self.timing = timing
        self.clock = clock
        self.quiet = quiet
        self.state = LISTENING
        self.last: Phrase | None = None
        self.level: str | None = None  # "deeper" after "go deeper"; None: any level allowed
        self._follow_up_until = float("-inf")
        self._quiet_until = float("-inf")  # own voice: stream seconds
        self._goodnight_until: datetime | None = None  # after "goodnight": local time
        self._active_at = float("-inf")  # when it last acted, for the idle reset of the level
        self._closing = False  # the goodnight being said: no follow-up window after it
        self._timed: Phrase | None = None  # a timed moment being said: its timer starts after it
        self._timer_ends = float("inf")  # stream seconds
        self.names = names  # [couple] names: questions are addressed to them in turn
        self.next_turn = next_turn if next_turn in names else (names[0] if names else None)
        self._last_to: str | None = None

    def _update(self, at: float) -> None:
        if self.state == FOLLOW_UP and at > self._follow_up_until:
            self.state = LISTENING
        if self.level is not None and self.state != SPEAKING and at - self._active_at > self.timing.level_idle_reset:
            self.level = None

    def _wanted(self, kind: str, at: float, level: str | None = None) -> Wanted:
        return Wanted(kind, level or self.level, self.clock.local(at).date(), self.last.id if self.last else None)

    def _answer(self, intent: str, phrase: Phrase) -> list[Action]:
        self.state = SPEAKING
        self._timed = phrase if phrase.seconds else None
        self.last = phrase
        if phrase.kind != "question" or not self.names:
            self._last_to = None
            return [Say(intent, phrase)]
        if intent in ("repeat", "skip") and self._last_to is not None:
            # The same person: a repeat is the same question, a skipped one is replaced.
            return [Say(intent, phrase, self._last_to)]
        return self._take_turn(intent, phrase)

    def _take_turn(self, intent: str, phrase: Phrase) -> list[Action]:
        to, self.next_turn = take_turn(self.names, self.next_turn)
        self._last_to = to
        return [Say(intent, phrase, to), NextTurn(self.next_turn)]

    def quiet_at(self, at: float) -> bool:
        """Wake phrases are ignored now: after "goodnight" until the morning, or in quiet hours."""
        now = self.clock.local(at)
        if self._goodnight_until is not None:
            if now < self._goodnight_until:
                return True
            self._goodnight_until = None
        return self.quiet.quiet_from is not None and within(now, self.quiet.quiet_from, self.quiet.morning)

    def on_intent(self, intent: Intent) -> list[Action]:
        at, kind = intent.at, intent.kind
        self._update(at)
        if self.state == SPEAKING:
            # Without echo cancellation "stop" over its own voice is not acted on: the
            # microphone hears mostly the answer itself, and its last word was heard as "stop"
            # in the room (a self-made stop that closed the follow-up window). With it
            # (barge_in), the commands that make sense while it speaks act; wake phrases never do.
            if not (self.barge_in and kind in BARGE_IN_INTENTS and self.last is not None):
                return [Ignored(kind, "speaking")]
            if kind != "stop" and self.quiet_at(at):  # saying goodnight: only "stop" cuts it
                return [Ignored(kind, "quiet")]
            self._active_at = at
            self._timed = None  # a timed moment cut short: no timer after it
            self._closing = False
            if kind == "stop":
                self.state = LISTENING
                self._follow_up_until = float("-inf")
                return [StopSpeaking()]
            # The others do what they do right after an answer (the runner's next sound cuts this one).
            self.state = FOLLOW_UP
            self._follow_up_until = at
        elif at < self._quiet_until:
            return [Ignored(kind, "own voice")]
        if self.state == TIMER:
            if kind != "stop":
                return [Ignored(kind, "timer")]  # the moment is theirs: only "stop" ends it
            self.state = LISTENING
            self._timer_ends = float("inf")
            self._active_at = at
            return [StopTimer(self.last)]
        if kind != "stop" and self.quiet_at(at):
            return [Ignored(kind, "quiet")]
        if kind in WAKE_INTENTS:
            self._active_at = at
            return self._answer(kind, self._pick(self._wanted(kind, at)))
        if self.state != FOLLOW_UP or self.last is None:
            # Follow-ups and voice changes act only right after an answer: anywhere else they
            # are far more likely to be words from a conversation or the television.
            return [Ignored(kind, "no follow-up window")]
        self._active_at = at
        last = self.last
        if kind in VOICE_CHANGES:
            self.state = SPEAKING  # the change is confirmed aloud; the window opens again after it
            return [AdjustVoice(kind)]
        if kind == "another":
            return self._answer(kind, self._pick(self._wanted(last.kind, at)))
        if kind == "repeat":
            return self._answer(kind, last)
        if kind == "deeper":
            self.level = "deeper"
            return self._answer(kind, self._pick(self._wanted(last.kind, at)))
        if kind == "lighter":
            self.level = None
            return self._answer(kind, self._pick(self._wanted(last.kind, at, level="light")))
        if kind == "skip":
            return [Forget(last, self.clock.local(at).date()), *self._answer(kind, self._pick(self._wanted(last.kind, at)))]
        if kind == "favorite":
            self.state = SPEAKING  # confirmed aloud; the window opens again after it
            return [Favorite(last)]
        if kind == "goodnight":
            now = self.clock.local(at)
            if self.quiet.quiet_hours is not None:
                until = now + timedelta(hours=self.quiet.quiet_hours)
            else:
                until = next_time_of_day(now, self.quiet.morning)
            self._goodnight_until = until
            self.level = None
            self.state = SPEAKING
            self._closing = True
            return [Goodnight(until)]
        if kind == "stop":
            self.state = LISTENING
            self._follow_up_until = float("-inf")
            return []
        return [Ignored(kind, "unknown intent")]

    def on_time(self, at: float) -> list[Action]:
        """Stream time has reached `at` (called for every piece of audio): ends a timed moment."""
        if self.state == TIMER and at >= self._timer_ends:
            self.state = SPEAKING  # "time's up" is said; the follow-up window opens after it
            self._timer_ends = float("inf")
            self._active_at = at
            return [TimeUp(self.last)]
        return []

    def on_speech_done(self, at: float) -> list[Action]:
        """The answer finished (or was cut short) at stream time `at`."""
        if self.state == SPEAKING and self._timed is not None:
            timed, self._timed = self._timed, None
            self.state = TIMER
            self._timer_ends = at + timed.seconds
            self._active_at = at
            self._quiet_until = at + self.timing.self_hearing_tail
            return [StartTimer(timed, timed.seconds)]
        if self.state == SPEAKING:
            self.state = LISTENING if self._closing else FOLLOW_UP
            self._follow_up_until = float("-inf") if self._closing else at + self.timing.follow_up_window
            self._closing = False
        self._active_at = max(self._active_at, at)
        self._quiet_until = at + self.timing.self_hearing_tail
        return []

    def upcoming(self, at: float) -> list[Say]:
        """What "ask us a question" and "give us a tip" said now would be answered with (the
        same as "another one" after an answer of that kind), the last answer's kind first; so
        that they can be rendered ahead. Nothing is taken from the bag. Empty while quiet,
        during a timed moment, or without a peek."""
        if self._peek is None or self.state == TIMER or self.quiet_at(at):
            return []
        self._update(at)
        kinds = ["question", "tip"]
        if self.last is not None and self.last.kind == "tip":
            kinds.reverse()
        upcoming = []
        for kind in kinds:
            phrase = self._peek(self._wanted(kind, at))
            if phrase is not None:
                to = self.next_turn if kind == "question" and self.names else None
                upcoming.append(Say(kind, phrase, to))
        return upcoming

    def state_at(self, at: float) -> str:
        self._update(at)
        return self.state

    @property
    def speaking(self) -> bool:
        return self.state == SPEAKING
