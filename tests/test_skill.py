"""The skill's state machine, without audio."""

from __future__ import annotations

import itertools

from voice_skill.intents import Intent
from voice_skill.phrases import Phrase
from voice_skill.skill import FOLLOW_UP, LISTENING, SPEAKING, Ignored, Say, Skill, SkillTiming


def picker():
    counter = itertools.count(1)
    return lambda wanted: Phrase(f"{wanted.kind}-{next(counter)}", wanted.kind, "c", wanted.level or "light", f"{wanted.kind} text", "test:1")


def intent(kind, at):
    return Intent(kind, at, kind, 1.0)


def test_wake_phrase_answers_with_its_kind():
    skill = Skill(picker())
    actions = skill.on_intent(intent("question", 1.0))
    assert len(actions) == 1 and isinstance(actions[0], Say)
    assert actions[0].phrase.kind == "question"
    assert skill.state == SPEAKING


def test_own_voice_never_wakes_the_skill():
    skill = Skill(picker(), SkillTiming(self_hearing_tail=0.5))
    skill.on_intent(intent("tip", 1.0))
    assert skill.on_intent(intent("question", 2.0)) == [Ignored("question", "speaking")]
    skill.on_speech_done(6.0)
    assert skill.on_intent(intent("question", 6.3)) == [Ignored("question", "own voice")]
    assert isinstance(skill.on_intent(intent("question", 6.6))[0], Say)


def test_follow_ups_only_inside_the_window():
    skill = Skill(picker(), SkillTiming(follow_up_window=8.0))
    first = skill.on_intent(intent("tip", 1.0))[0].phrase
    skill.on_speech_done(5.0)
    assert skill.state_at(6.0) == FOLLOW_UP
    again = skill.on_intent(intent("repeat", 6.0))
    assert again == [Say("repeat", first)]
    skill.on_speech_done(9.0)
    another = skill.on_intent(intent("another", 16.9))[0]
    assert another.phrase.kind == "tip" and another.phrase != first
    skill.on_speech_done(20.0)
    assert skill.on_intent(intent("another", 28.5)) == [Ignored("another", "no follow-up window")]
    assert skill.state == LISTENING


def test_follow_up_without_an_answer_is_ignored():
    skill = Skill(picker())
    assert skill.on_intent(intent("another", 1.0)) == [Ignored("another", "no follow-up window")]
    assert skill.on_intent(intent("stop", 1.0)) == [Ignored("stop", "no follow-up window")]


def test_stop_over_its_own_voice_is_not_acted_on():
    """Without echo cancellation "stop" while speaking is mostly the answer heard back."""
    skill = Skill(picker())
    skill.on_intent(intent("question", 1.0))
    assert skill.on_intent(intent("stop", 2.0)) == [Ignored("stop", "speaking")]
    skill.on_speech_done(2.1)
    assert skill.state == FOLLOW_UP
    assert skill.on_intent(intent("stop", 3.0)) == []  # right after the answer it closes the window
    assert skill.on_intent(intent("another", 4.0)) == [Ignored("another", "no follow-up window")]


def test_stop_in_the_window_closes_it():
    skill = Skill(picker())
    skill.on_intent(intent("question", 1.0))
    skill.on_speech_done(3.0)
    assert skill.on_intent(intent("stop", 4.0)) == []
    assert skill.on_intent(intent("repeat", 5.0)) == [Ignored("repeat", "no follow-up window")]


def test_voice_changes_only_in_the_follow_up_window_and_not_over_its_own_voice():
    from voice_skill.skill import AdjustVoice

    skill = Skill(picker())
    assert skill.on_intent(intent("softer", 1.0)) == [Ignored("softer", "no follow-up window")]
    skill.on_intent(intent("tip", 2.0))
    assert skill.on_intent(intent("slower", 3.0)) == [Ignored("slower", "speaking")]
    skill.on_speech_done(5.0)
    assert skill.on_intent(intent("softer", 6.0)) == [AdjustVoice("softer")]
    assert skill.on_intent(intent("slower", 6.5)) == [Ignored("slower", "speaking")]  # over its "Softer."
    skill.on_speech_done(7.0)  # the confirmation opens the window again
    assert skill.on_intent(intent("slower", 8.0)) == [AdjustVoice("slower")]
    skill.on_speech_done(9.0)
    assert skill.on_intent(intent("faster", 9.0 + skill.timing.follow_up_window + 1)) == [Ignored("faster", "no follow-up window")]


def test_stray_commands_never_act_outside_the_window():
    """Every follow-up and voice command said with no answer before it is ignored."""
    skill = Skill(picker())
    for i, kind in enumerate(("another", "repeat", "stop", "softer", "louder", "slower", "faster")):
        assert skill.on_intent(intent(kind, 1.0 + i)) == [Ignored(kind, "no follow-up window")]
    assert skill.state == LISTENING


# ---------------------------------------------------------------- barge-in (issue 13)

from voice_skill.skill import AdjustVoice, StopSpeaking  # noqa: E402


def test_without_barge_in_every_command_is_ignored_while_speaking():
    skill = Skill(picker())
    skill.on_intent(intent("tip", 1.0))
    for kind in ("stop", "another", "repeat", "softer", "question"):
        assert skill.on_intent(intent(kind, 2.0)) == [Ignored(kind, "speaking")]
    assert skill.state == SPEAKING


def test_barge_in_stop_cuts_the_answer_and_closes_the_window():
    skill = Skill(picker(), barge_in=True)
    skill.on_intent(intent("tip", 1.0))
    assert skill.on_intent(intent("stop", 3.0)) == [StopSpeaking()]
    assert skill.state == LISTENING
    skill.on_speech_done(3.1)  # the runner cut the answer
    assert skill.state == LISTENING
    assert skill.on_intent(intent("another", 4.0)) == [Ignored("another", "no follow-up window")]


def test_barge_in_never_lets_a_wake_phrase_act_while_speaking():
    skill = Skill(picker(), barge_in=True)
    skill.on_intent(intent("tip", 1.0))
    for kind in ("question", "tip", "deeper", "skip", "goodnight", "favorite"):
        assert skill.on_intent(intent(kind, 2.0)) == [Ignored(kind, "speaking")]
    assert skill.state == SPEAKING


def test_barge_in_another_repeat_and_voice_changes_act_while_speaking():
    skill = Skill(picker(), barge_in=True)
    first = skill.on_intent(intent("tip", 1.0))[0].phrase
    another = skill.on_intent(intent("another", 2.0))
    assert isinstance(another[0], Say) and another[0].phrase.kind == "tip" and another[0].phrase != first
    repeat = skill.on_intent(intent("repeat", 3.0))
    assert isinstance(repeat[0], Say) and repeat[0].phrase == another[0].phrase
    assert skill.on_intent(intent("softer", 4.0)) == [AdjustVoice("softer")]
    assert skill.state == SPEAKING  # "Softer." is said; the window opens after it
    skill.on_speech_done(5.0)
    assert skill.state == FOLLOW_UP


def test_barge_in_on_a_timed_moment_leaves_no_timer():
    timed = Phrase("moment-1", "tip", "moments", "light", "Look at each other.", "test:1", seconds=60)
    skill = Skill(lambda wanted: timed, barge_in=True)
    skill.on_intent(intent("tip", 1.0))
    assert skill.on_intent(intent("stop", 2.0)) == [StopSpeaking()]
    assert skill.on_speech_done(2.1) == []
    assert skill.on_time(100.0) == []


def test_a_question_addressed_by_name_reads_as_one_sentence():
    from voice_skill.skill import addressed

    phrase = Phrase(id="q-x-01", kind="question", category="playful", level="light", text="What would you cook for me?", source="test:1")
    assert Say("question", phrase, to="Sam").text == "Sam, what would you cook for me?"
    assert Say("question", phrase).text == "What would you cook for me?"
    assert addressed("I never told you this: what scared you as a child?").startswith("I never")
    assert addressed("TV off: what do you see?").startswith("TV off")
