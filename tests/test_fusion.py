"""The fusion rule on its own: evidence in, a decision naming its rule out (no audio)."""

from __future__ import annotations

from dataclasses import replace

from voice_skill.recognizers.fusion import WHOLE_RULE, FusionRule, accepted_phrase, decide
from voice_skill.recognizers.verification import PhoneticEvidence

RULE = FusionRule(min_frame_score=-3.5, floor_frame_score=-4.5, neural_veto=0.2, neural_sure=0.8, whole_frame_score=-3.5, whole_noisy_allowance=0.8)
# A phrase said by itself whose whole utterance is the wake phrase, fitting at -3.2 per frame.
ALONE = PhoneticEvidence(
    "give us a tip", -3.2, -4.0, 10.0, margin=-0.1, rival="give us a kiss", decoy_margin=0.2, decoy="give us a hand",
    alone=True, whole="give us a tip", whole_score=-3.2, whole_rate=10.0, whole_wake=True,
)


def test_the_whole_utterance_rule_accepts_what_the_engine_before_v2_accepted_whatever_the_neural_score():
    for neural in (None, 0.0, 0.05, 1.0):
        decision = decide(RULE, ALONE, neural, noisy=False)
        assert decision.accept and decision.rule == WHOLE_RULE


def test_the_whole_utterance_rule_asks_the_bar_and_a_speaking_rate():
    weak = replace(ALONE, whole_score=-3.8)
    assert decide(RULE, weak, 0.0, noisy=False).rule != WHOLE_RULE
    assert decide(RULE, weak, 0.0, noisy=True).rule == WHOLE_RULE  # the noisy allowance: -4.3
    slow = replace(ALONE, whole_rate=4.0)
    assert decide(RULE, slow, 0.0, noisy=False).rule != WHOLE_RULE


def test_a_decoy_or_a_command_as_the_whole_utterance_is_not_a_wake_phrase():
    decoy = replace(ALONE, whole="give us a hand", whole_wake=False)
    decision = decide(RULE, decoy, 0.0, noisy=False)
    assert decision.rule != WHOLE_RULE
    assert not decision.accept  # then the other rules decide: here the neural veto


def test_the_whole_utterance_rule_asks_that_no_generated_sound_alike_fits_clearly_better():
    # A margin of -0.5 over the generated sound-alikes is more than the -0.15 allowed.
    assert decide(RULE, replace(ALONE, margin=-0.5), 0.5, noisy=False).rule != WHOLE_RULE
    assert decide(RULE, ALONE, 0.5, noisy=False).rule == WHOLE_RULE
    assert decide(RULE, replace(ALONE, margin=None), 0.5, noisy=False).rule == WHOLE_RULE  # not weighed
    assert decide(replace(RULE, use_rivals=False), ALONE, 0.5, noisy=False).rule == WHOLE_RULE


def test_without_the_whole_utterance_rule_the_other_rules_decide():
    off = replace(RULE, whole_frame_score=None)
    assert decide(off, ALONE, 0.1, noisy=False) == decide(off, replace(ALONE, whole=None, whole_score=None, whole_wake=False), 0.1, noisy=False)
    assert decide(off, ALONE, 0.1, noisy=False).rule == "neural veto"
    assert decide(off, ALONE, 0.5, noisy=False).rule == "phonetic fit"  # decoys only when alone


def test_the_accepted_phrase_is_what_the_whole_utterance_is_under_the_whole_rule():
    other = replace(ALONE, text="give me a tip")
    decision = decide(RULE, other, 0.5, noisy=False)
    assert accepted_phrase(decision, other) == "give us a tip"
    decision = decide(replace(RULE, whole_frame_score=None), other, 0.5, noisy=False)
    assert accepted_phrase(decision, other) == "give me a tip"


# Said straight after other words: the spotter's window, a fit below the floor.
RUN_ON = PhoneticEvidence("ask us a question", -4.9, -7.0, 11.0, margin=0.1, rival="ask us a christian", decoy_margin=0.3, decoy="ask us the way")


def test_a_certain_neural_score_accepts_a_fit_below_the_floor_but_not_below_the_deep_floor():
    rule = replace(RULE, neural_certain=0.95, deep_floor_frame_score=-6.0)
    assert decide(rule, RUN_ON, 0.97, noisy=False).accept
    assert not decide(rule, RUN_ON, 0.9, noisy=False).accept  # sure is not certain
    assert decide(rule, RUN_ON, 0.9, noisy=False).rule == "phonetic floor"
    assert not decide(rule, replace(RUN_ON, frame_score=-6.5), 1.0, noisy=False).accept  # the words are not there
    assert not decide(rule, replace(RUN_ON, phones_per_second=4.0), 1.0, noisy=False).accept  # too slow to be a request
    assert not decide(replace(rule, signals="phonetic"), RUN_ON, 1.0, noisy=False).accept  # the phonetic path alone
    assert not decide(replace(rule, neural_certain=1.01), RUN_ON, 1.0, noisy=False).accept  # off


# A one-word "stop" said by itself: 4 phones over a 0.75 s word span.
STOP = PhoneticEvidence("stop", -2.7, -3.1, 5.3)


def test_a_command_has_its_own_bar_rate_and_noisy_allowance():
    """fusion.command_fits, which WakeEngine._command asks: the command bar, lower by the
    commands' own allowance while noise is suppressed, and the commands' own rate bar (a
    one-word command is slow by this measure), not the wake phrases' (5.5, no allowance)."""
    from voice_skill.recognizers.fusion import command_bars, command_fits

    rule = FusionRule(min_command_score=-2.5, min_one_word_command_score=-2.5, min_command_phones_per_second=5.0, command_noisy_allowance=0.4, min_phones_per_second=5.5, noisy_allowance=0.0)
    assert not command_fits(rule, STOP, noisy=False)  # -2.7 is below -2.5
    assert command_fits(rule, STOP, noisy=True)  # ... but not below -2.9
    assert command_fits(rule, replace(STOP, frame_score=-2.2), noisy=False)  # 5.3 phones/s is a command's rate
    assert not command_fits(rule, replace(STOP, frame_score=-2.2, phones_per_second=4.6), noisy=False)
    assert not command_fits(rule, replace(STOP, frame_score=-3.0), noisy=True)
    assert not command_fits(replace(rule, command_noisy_allowance=0.0), STOP, noisy=True)
    assert command_bars(rule, "another one", True) == "command bar -2.90/frame (noisy), 5.0 phones/s"
    defaults = FusionRule()  # chosen on dev: training/tune_commands.py
    assert (defaults.min_command_score, defaults.min_command_phones_per_second, defaults.command_noisy_allowance) == (-2.5, 5.0, 0.4)


def test_a_one_word_command_has_a_bar_of_its_own():
    """'stop' has no other word to carry its fit: its own bar is lower; a command of two
    words or more keeps the command bar."""
    from voice_skill.recognizers.fusion import command_bars, command_fits

    rule = FusionRule(min_command_score=-2.5, min_one_word_command_score=-4.0, command_noisy_allowance=0.4, min_command_phones_per_second=5.0)
    assert command_fits(rule, replace(STOP, frame_score=-3.9), noisy=False)
    assert not command_fits(rule, replace(STOP, frame_score=-4.1), noisy=False)
    assert command_fits(rule, replace(STOP, frame_score=-4.3), noisy=True)  # the noisy allowance applies to it too
    assert not command_fits(rule, PhoneticEvidence("another one", -3.9, -4.0, 8.0), noisy=False)
    assert command_bars(rule, "stop", False) == "command bar -4.00/frame, 5.0 phones/s"
    assert FusionRule().min_one_word_command_score == -4.0
