"""The bedtime ritual without audio: the skill with an injected clock, the picker, the memory."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, time, timedelta, timezone

import pytest

from voice_skill.intents import Intent
from voice_skill.memory import Memory
from voice_skill.night import QuietRules, StreamClock
from voice_skill.phrases import ContentFilter, Phrase, PhraseBag
from voice_skill.picker import Picker, Wanted
from voice_skill.skill import FOLLOW_UP, LISTENING, Favorite, Forget, Goodnight, Ignored, Say, Skill

UTC = timezone.utc


def clock_at(hour: int, minute: int = 0, day: int = 26) -> StreamClock:
    """Stream second 0 is this local time (UTC here, so no daylight saving in the way)."""
    return StreamClock(datetime(2026, 11, day, hour, minute, tzinfo=UTC), UTC)


def library() -> list[Phrase]:
    phrases = []
    for kind, prefix in (("question", "q"), ("tip", "t")):
        for level in ("light", "deeper"):
            for i in range(6):
                phrases.append(Phrase(f"{prefix}-{level}-{i}", kind, "c", level, f"{kind} {level} {i}", "test:1"))
    return phrases


def real_picker(memory: Memory | None = None, seed: int = 1) -> Picker:
    return Picker(PhraseBag(library(), rng=random.Random(seed)), memory or Memory(), ContentFilter(), random.Random(seed))


def intent(kind: str, at: float) -> Intent:
    return Intent(kind, at, kind, 1.0)


def said(actions) -> Say:
    says = [a for a in actions if isinstance(a, Say)]
    assert len(says) == 1, actions
    return says[0]


def answer(skill: Skill, kind: str, at: float, done_after: float = 2.0) -> Say:
    say = said(skill.on_intent(intent(kind, at)))
    skill.on_speech_done(at + done_after)
    return say


# ---------------------------------------------------------------- go deeper, something lighter


def test_go_deeper_answers_from_the_deeper_level_and_stays_there():
    skill = Skill(real_picker(), clock=clock_at(22))
    first = answer(skill, "question", 1.0)
    deeper = answer(skill, "deeper", 4.0)
    assert deeper.intent == "deeper" and deeper.phrase.kind == "question" and deeper.phrase.level == "deeper"
    assert deeper.phrase.id != first.phrase.id
    # It sticks: another one, and later wake phrases of either kind, are deeper too.
    assert answer(skill, "another", 7.0).phrase.level == "deeper"
    assert answer(skill, "tip", 60.0).phrase.level == "deeper"
    assert answer(skill, "question", 600.0).phrase.level == "deeper"


def test_something_lighter_ends_the_deeper_level():
    skill = Skill(real_picker(), clock=clock_at(22))
    answer(skill, "tip", 1.0)
    answer(skill, "deeper", 4.0)
    lighter = answer(skill, "lighter", 7.0)
    assert lighter.intent == "lighter" and lighter.phrase.kind == "tip" and lighter.phrase.level == "light"
    assert skill.level is None
    levels = {answer(skill, "question", 20.0 + 10 * i).phrase.level for i in range(12)}
    assert levels == {"light", "deeper"}  # the usual mix again


def test_deeper_ends_after_thirty_idle_minutes():
    skill = Skill(real_picker(), clock=clock_at(22))
    answer(skill, "question", 1.0)
    answer(skill, "deeper", 4.0)  # its answer ends at 6.0
    assert answer(skill, "question", 6.0 + 29 * 60).phrase.level == "deeper"  # 29 minutes: still deeper
    last_end = 6.0 + 29 * 60 + 2.0
    assert skill.level == "deeper"
    skill.on_intent(intent("another", last_end + 30 * 60 + 1))  # nobody spoke to it for 30 minutes
    assert skill.level is None


def test_go_deeper_only_in_the_follow_up_window():
    skill = Skill(real_picker(), clock=clock_at(22))
    assert skill.on_intent(intent("deeper", 1.0)) == [Ignored("deeper", "no follow-up window")]
    answer(skill, "question", 2.0)
    assert skill.on_intent(intent("deeper", 4.0 + skill.timing.follow_up_window + 1)) == [Ignored("deeper", "no follow-up window")]
    assert skill.level is None


# ---------------------------------------------------------------- skip


def test_skip_answers_at_once_and_forgets_the_phrase_with_the_date():
    skill = Skill(real_picker(), clock=clock_at(23, 50))
    first = answer(skill, "question", 1.0)
    actions = skill.on_intent(intent("skip", 4.0))
    assert actions[0] == Forget(first.phrase, date(2026, 11, 26))
    nxt = said(actions)
    assert nxt.intent == "skip" and nxt.phrase.kind == "question" and nxt.phrase.id != first.phrase.id
    # The date is the local date at the moment it was said: past midnight it is the next day.
    skill.on_speech_done(6.0)
    late = skill.on_intent(intent("skip", 11 * 60.0))
    assert late == [Ignored("skip", "no follow-up window")]
    answer(skill, "question", 11 * 60.0)
    assert skill.on_intent(intent("skip", 11 * 60.0 + 4))[0].on == date(2026, 11, 27)


def test_a_skipped_phrase_stays_away_for_thirty_days_then_comes_back():
    memory = Memory()
    pick = real_picker(memory)
    day = date(2026, 11, 1)
    skipped = pick(Wanted("tip", "light", day))
    memory.skip(skipped.id, day)
    for offset in range(30):  # 30 days: five light tips are enough for every night
        today = day + timedelta(days=offset)
        drawn = {pick(Wanted("tip", "light", today)).id for _ in range(5)}
        assert skipped.id not in drawn, today
    back = day + timedelta(days=30)
    assert skipped.id in {pick(Wanted("tip", "light", back)).id for _ in range(6)}
    assert memory.skipped == {}  # forgotten once its 30 days are over


def test_when_everything_of_a_level_is_skipped_the_level_gives_way_first():
    memory = Memory()
    pick = real_picker(memory)
    today = date(2026, 11, 26)
    for i in range(6):
        memory.skip(f"q-deeper-{i}", today)
    assert pick(Wanted("question", "deeper", today)).level == "light"


# ---------------------------------------------------------------- favourites


def test_i_like_that_one_remembers_the_phrase_and_opens_the_window_again():
    skill = Skill(real_picker(), clock=clock_at(22))
    first = answer(skill, "question", 1.0)
    assert skill.on_intent(intent("favorite", 4.0)) == [Favorite(first.phrase)]
    assert skill.on_intent(intent("another", 4.5)) == [Ignored("another", "speaking")]  # over its "Saved."
    skill.on_speech_done(5.0)
    assert skill.state_at(6.0) == FOLLOW_UP
    assert said(skill.on_intent(intent("another", 6.0))).intent == "another"


def test_favourites_come_back_sooner_but_at_most_one_answer_in_five():
    memory = Memory()
    pick = real_picker(memory, seed=7)
    today = date(2026, 11, 26)
    favorite = "t-light-0"
    memory.add_favorite(favorite)
    drawn, returns = [], []
    for i in range(300):
        drawn.append(pick(Wanted("tip", None, today)).id)
        if memory.answers_since_favorite == 0:  # this answer was a favourite brought back early
            returns.append(i)
    hits = [i for i, pid in enumerate(drawn) if pid == favorite]
    # The bag alone brings it back once in twelve tips (25 times in 300): a favourite comes more often...
    assert len(hits) > 35 and set(returns) <= set(hits)
    # ...but an early return is at most one answer in five.
    assert returns and all(b - a >= 5 for a, b in zip(returns, returns[1:])), returns


def test_a_favourite_does_not_come_straight_back_after_itself():
    memory = Memory()
    pick = real_picker(memory)
    memory.add_favorite("q-light-0")
    memory.answers_since_favorite = 10
    today = date(2026, 11, 26)
    assert all(pick(Wanted("question", None, today, not_id="q-light-0")).id != "q-light-0" for _ in range(3))


def test_memory_keeps_ids_dates_and_a_name_across_restarts(tmp_path):
    state = tmp_path / "ritual.json"
    memory = Memory(state)
    memory.skip("q-light-1", date(2026, 11, 26))
    memory.add_favorite("t-deeper-2")
    memory.set_next_turn("Alex")
    again = Memory(state)
    assert again.skipped == {"q-light-1": date(2026, 11, 26)}
    assert again.favorites == ["t-deeper-2"] and again.next_turn == "Alex"
    saved = json.loads(state.read_text())
    assert set(saved) == {"version", "skipped", "favorites", "answers_since_favorite", "next_turn"}


def test_a_corrupt_memory_file_starts_afresh(tmp_path, caplog):
    state = tmp_path / "ritual.json"
    state.write_text('{"skipped": {"x": "not a date"}}')
    memory = Memory(state)
    assert memory.skipped == {} and "corrupt" in caplog.text
    memory.add_favorite("q-light-1")
    assert Memory(state).favorites == ["q-light-1"]


# ---------------------------------------------------------------- goodnight and quiet hours


def test_goodnight_then_quiet_until_the_morning():
    skill = Skill(real_picker(), clock=clock_at(23, 30))
    answer(skill, "question", 1.0)
    actions = skill.on_intent(intent("goodnight", 4.0))
    assert actions == [Goodnight(datetime(2026, 11, 27, 6, 0, tzinfo=UTC))]
    skill.on_speech_done(6.0)
    assert skill.state == LISTENING  # no follow-up window after goodnight
    assert skill.on_intent(intent("another", 7.0)) == [Ignored("another", "quiet")]
    at_three = 3.5 * 3600  # 03:00 the next morning
    assert skill.on_intent(intent("question", at_three)) == [Ignored("question", "quiet")]
    assert skill.on_intent(intent("question", 6.5 * 3600 - 1)) == [Ignored("question", "quiet")]  # 05:59:59
    at_six = 6.5 * 3600  # 06:00
    assert said(skill.on_intent(intent("tip", at_six))).intent == "tip"


def test_goodnight_after_midnight_is_quiet_until_this_morning():
    skill = Skill(real_picker(), clock=clock_at(1, 15))
    answer(skill, "tip", 1.0)
    assert skill.on_intent(intent("goodnight", 4.0)) == [Goodnight(datetime(2026, 11, 26, 6, 0, tzinfo=UTC))]


def test_goodnight_with_quiet_hours_and_another_morning():
    skill = Skill(real_picker(), clock=clock_at(22), quiet=QuietRules(morning=time(7, 30), quiet_hours=2))
    answer(skill, "tip", 1.0)
    assert skill.on_intent(intent("goodnight", 4.0)) == [Goodnight(datetime(2026, 11, 27, 0, 0, 4, tzinfo=UTC))]  # 22:00:04 + 2 h
    skill.on_speech_done(6.0)
    assert skill.on_intent(intent("question", 7200.0)) == [Ignored("question", "quiet")]
    assert said(skill.on_intent(intent("question", 7205.0))).intent == "question"
    morning = Skill(real_picker(), clock=clock_at(22), quiet=QuietRules(morning=time(7, 30)))
    answer(morning, "tip", 1.0)
    assert morning.on_intent(intent("goodnight", 4.0)) == [Goodnight(datetime(2026, 11, 27, 7, 30, tzinfo=UTC))]


def test_quiet_hours_apply_without_goodnight():
    skill = Skill(real_picker(), clock=clock_at(23, 0), quiet=QuietRules(morning=time(6, 0), quiet_from=time(0, 30)))
    assert said(skill.on_intent(intent("question", 60.0))).intent == "question"  # 23:01
    skill.on_speech_done(63.0)
    half_past = 90 * 60.0  # 00:30
    assert skill.on_intent(intent("tip", half_past)) == [Ignored("tip", "quiet")]
    assert skill.on_intent(intent("question", 6.99 * 3600)) == [Ignored("question", "quiet")]  # 05:59
    assert said(skill.on_intent(intent("question", 7 * 3600.0))).intent == "question"  # 06:00


def test_stray_ritual_commands_never_act_outside_the_window():
    skill = Skill(real_picker(), clock=clock_at(22))
    for i, kind in enumerate(("deeper", "lighter", "skip", "favorite", "goodnight")):
        assert skill.on_intent(intent(kind, 1.0 + i)) == [Ignored(kind, "no follow-up window")]
    assert skill.state == LISTENING and skill.level is None and not skill.quiet_at(10.0)


@pytest.mark.parametrize("level", ["light", "deeper"])
def test_the_bag_never_repeats_within_a_level(level):
    bag = PhraseBag(library(), rng=random.Random(3))
    drawn = [bag.draw("question", level=level).id for _ in range(6)]
    assert len(set(drawn)) == 6 and all(f"-{level}-" in pid for pid in drawn)


# ---------------------------------------------------------------- timed moments


def timed_picker(seconds: int = 120):
    def pick(wanted: Wanted) -> Phrase:
        return Phrase(f"{wanted.kind}-timed", wanted.kind, "moments", "light", "Look at each other.", "test:1", seconds)

    return pick


def test_a_timed_moment_is_silence_then_times_up_then_the_window():
    from voice_skill.skill import TIMER, StartTimer, TimeUp

    skill = Skill(timed_picker(120), clock=clock_at(22))
    tip = said(skill.on_intent(intent("tip", 1.0))).phrase
    assert skill.on_speech_done(9.0) == [StartTimer(tip, 120)]
    assert skill.state == TIMER
    assert skill.on_time(128.9) == []
    assert skill.on_intent(intent("question", 60.0)) == [Ignored("question", "timer")]  # a wake phrase is ignored
    assert skill.on_intent(intent("another", 61.0)) == [Ignored("another", "timer")]
    assert skill.on_time(129.0) == [TimeUp(tip)]
    assert skill.on_intent(intent("another", 129.5)) == [Ignored("another", "speaking")]  # over "time's up"
    assert skill.on_speech_done(131.0) == []  # "time's up" ends: the follow-up window opens
    assert skill.state_at(132.0) == FOLLOW_UP
    assert isinstance(skill.on_intent(intent("goodnight", 132.0))[0], Goodnight)
    skill.on_speech_done(134.0)
    assert skill.quiet_at(140.0)


def test_stop_ends_a_timed_moment_without_times_up():
    from voice_skill.skill import StopTimer

    skill = Skill(timed_picker(60), clock=clock_at(22))
    tip = said(skill.on_intent(intent("tip", 1.0))).phrase
    skill.on_speech_done(5.0)
    assert skill.on_intent(intent("stop", 5.2)) == [Ignored("stop", "own voice")]  # its own last word
    assert skill.on_intent(intent("stop", 20.0)) == [StopTimer(tip)]
    assert skill.state == LISTENING
    assert skill.on_time(100.0) == []  # no time's up after a stop
    assert said(skill.on_intent(intent("question", 30.0))).intent == "question"


def test_repeat_of_a_timed_moment_times_it_again():
    from voice_skill.skill import StartTimer

    skill = Skill(timed_picker(30), clock=clock_at(22))
    tip = said(skill.on_intent(intent("tip", 1.0))).phrase
    skill.on_speech_done(5.0)
    skill.on_time(35.0)
    skill.on_speech_done(36.0)
    assert said(skill.on_intent(intent("repeat", 37.0))).phrase == tip
    assert skill.on_speech_done(40.0) == [StartTimer(tip, 30)]


def test_untimed_phrases_do_not_start_a_timer():
    skill = Skill(real_picker(), clock=clock_at(22))
    answer(skill, "tip", 1.0)
    assert skill.state == FOLLOW_UP and skill.on_time(10_000.0) == []


def test_the_picker_can_leave_timed_moments_out():
    phrases = library() + [Phrase("t-timed", "tip", "c", "light", "Hug.", "test:1", 60)]
    pick = Picker(PhraseBag(phrases, rng=random.Random(2)), Memory(), ContentFilter(), random.Random(2))
    today = date(2026, 11, 26)
    assert "t-timed" not in {pick(Wanted("tip", None, today, timed=False)).id for _ in range(40)}
    assert "t-timed" in {pick(Wanted("tip", None, today)).id for _ in range(13)}


# ---------------------------------------------------------------- taking turns


def test_questions_are_addressed_in_turn_and_tips_to_nobody():
    from voice_skill.skill import NextTurn

    skill = Skill(real_picker(), clock=clock_at(22), names=("Sam", "Alex"))
    first = skill.on_intent(intent("question", 1.0))
    assert said(first).to == "Sam" and NextTurn("Alex") in first
    skill.on_speech_done(3.0)
    assert said(skill.on_intent(intent("another", 4.0))).to == "Alex"
    skill.on_speech_done(6.0)
    assert said(skill.on_intent(intent("repeat", 7.0))).to == "Alex"  # the same question, the same person
    skill.on_speech_done(9.0)
    skip = skill.on_intent(intent("skip", 10.0))
    assert said(skip).to == "Alex" and not any(isinstance(a, NextTurn) for a in skip)  # a skipped question is replaced
    skill.on_speech_done(12.0)
    assert said(skill.on_intent(intent("deeper", 13.0))).to == "Sam"
    skill.on_speech_done(15.0)
    tip = skill.on_intent(intent("tip", 30.0))
    assert said(tip).to is None and tip == [said(tip)]  # tips are for both
    skill.on_speech_done(32.0)
    assert said(skill.on_intent(intent("question", 40.0))).to == "Alex"


def test_turns_go_on_from_last_night():
    skill = Skill(real_picker(), clock=clock_at(22), names=("Sam", "Alex"), next_turn="Alex")
    assert said(skill.on_intent(intent("question", 1.0))).to == "Alex"
    renamed = Skill(real_picker(), clock=clock_at(22), names=("Sam", "Robin"), next_turn="Alex")  # names changed
    assert said(renamed.on_intent(intent("question", 1.0))).to == "Sam"


def test_without_names_nothing_changes():
    skill = Skill(real_picker(), clock=clock_at(22))
    actions = skill.on_intent(intent("question", 1.0))
    assert len(actions) == 1 and said(actions).to is None


# ---------------------------------------------------------------- softer at night


def test_the_night_volume_applies_from_night_from_until_the_morning():
    from voice_skill.night import NightVoice

    night = NightVoice(0.4, time(23, 0), time(6, 0))
    at = lambda h, m=0: datetime(2026, 11, 26, h, m, tzinfo=UTC)  # noqa: E731
    assert night.volume_at(at(22, 59), 0.6) == 0.6
    assert night.volume_at(at(23, 0), 0.6) == 0.4
    assert night.volume_at(at(3, 0), 0.6) == 0.4
    assert night.volume_at(at(5, 59), 0.6) == 0.4
    assert night.volume_at(at(6, 0), 0.6) == 0.6
    assert night.volume_at(at(23, 30), 0.3) == 0.3  # never louder than the chosen volume
    assert NightVoice().volume_at(at(23, 30), 0.6) == 0.6  # off unless night_volume is set


# ---------------------------------------------------------------- what comes next (rendered ahead)


@pytest.mark.parametrize("seed", range(5))
def test_upcoming_is_exactly_what_the_next_wake_phrase_or_another_one_says(seed):
    """Skill.upcoming() foretells the next question and tip without taking them from the bag,
    through refills, favourites coming back, skips and turns, so that they can be rendered
    ahead; "go deeper" changes what comes and upcoming() says so."""
    memory = Memory()
    pick = real_picker(memory, seed)
    skill = Skill(pick, clock=clock_at(22), names=("Sam", "Alex"), peek=pick.peek)
    rng = random.Random(seed)
    at, asked = 1.0, 0
    for step in range(60):
        upcoming = {say.phrase.kind: say for say in skill.upcoming(at)}
        assert set(upcoming) == {"question", "tip"}
        assert [s.text for s in skill.upcoming(at)] == [s.text for s in upcoming.values()]  # asking again changes nothing
        if skill.state_at(at) == FOLLOW_UP and rng.random() < 0.5:
            kind = rng.choice(["another", "favorite", "skip", "deeper", "lighter"])
            actions = skill.on_intent(intent(kind, at))
            for action in actions:
                if isinstance(action, Forget):
                    memory.skip(action.phrase.id, action.on)
                if isinstance(action, Favorite):
                    memory.add_favorite(action.phrase.id)
            says = [a for a in actions if isinstance(a, Say)]
            if kind == "another":
                asked += 1
                expected = upcoming[skill.last.kind]
                assert (says[0].phrase, says[0].text) == (expected.phrase, expected.text), (step, says[0], expected)
        else:
            kind = rng.choice(["question", "tip"])
            actions = skill.on_intent(intent(kind, at))
            says = [a for a in actions if isinstance(a, Say)]
            asked += 1
            assert (says[0].phrase, says[0].text) == (upcoming[kind].phrase, upcoming[kind].text), (step, says[0], upcoming[kind])
        skill.on_speech_done(at + 2.0)
        at += 3.0 if rng.random() < 0.7 else 12.0
    assert asked > 30


def test_upcoming_is_empty_while_quiet_and_without_a_peek():
    pick = real_picker()
    assert Skill(pick, clock=clock_at(22)).upcoming(1.0) == []
    skill = Skill(pick, clock=clock_at(22), peek=pick.peek)
    answer(skill, "question", 1.0)
    skill.on_intent(intent("goodnight", 4.0))
    skill.on_speech_done(5.0)
    assert skill.upcoming(6.0) == []


def test_peek_leaves_the_bag_and_its_state_file_as_they_were(tmp_path):
    state = tmp_path / "phrase-bag.json"
    bag = PhraseBag(library(), state, rng=random.Random(3))
    bag.draw("question")
    before = state.read_text()
    for _ in range(20):
        peeked = bag.peek("question", level="deeper")
    assert state.read_text() == before
    assert bag.draw("question", level="deeper") == peeked
