"""Fusion: one accept-or-reject rule over the evidence of the stages.

The phonetic evidence (how well the phrase's words fit, whether a sound-alike fits better)
is best on clean and natural speech; the neural score (a small classifier on a general
speech embedding) holds up better in noise. The rule, in order:

1. No phonetic candidate, or the fit says the words are not there at all (below the floor):
   reject.
2. A generated sound-alike fits the window better than the phrase, by more than the
   confusion margin allows: reject, unless the neural signal is sure it is the phrase.
3. The phonetic fit clears its bar (lower while noise is suppressed) at a plausible speaking
   rate: accept, unless the neural signal is sure it is not the phrase (veto).
4. The fit is between the floor and the bar: accept only if the neural signal is sure.

Every decision names the rule that made it, for the -v log. The thresholds are chosen on a
development split of the training voices, never on evaluation voices.
"""

from __future__ import annotations

from dataclasses import dataclass

from voice_skill.recognizers.verification import PhoneticEvidence

PHONETIC = "phonetic"
NEURAL = "neural"
FUSED = "fused"
SIGNALS = (FUSED, PHONETIC, NEURAL)


@dataclass(frozen=True)
class FusionRule:
    signals: str = FUSED
    min_frame_score: float = -3.5  # the phonetic bar (mean log score per frame)
    noisy_allowance: float = 0.8  # how much lower the bar is while noise is suppressed
    floor_frame_score: float = -5.5  # below this, the words are not there, whatever the neural score
    min_worst_word: float = -7.0  # no single word may fit worse than this
    min_phones_per_second: float = 5.5  # slower is not the phrase said as a request
    neural_sure: float = 0.9  # a neural score that accepts a weaker phonetic fit
    neural_veto: float = 0.02  # a neural score that rejects a phonetic accept
    neural_alone: float = 0.5  # the bar when the neural signal decides alone
    use_rivals: bool = True
    min_margin: float = 0.0  # per frame: how much better than the rivals the wake phrase must fit


@dataclass(frozen=True)
class Decision:
    accept: bool
    rule: str  # which rule decided, for the log


def decide(rule: FusionRule, phonetic: PhoneticEvidence | None, neural: float | None, noisy: bool) -> Decision:
    """Accept or reject a wake-phrase candidate. `neural` is the neural score of the
    candidate's intent (None when there is no neural signal)."""
    if rule.signals == NEURAL:
        if neural is None:
            return Decision(False, "no neural signal")
        return Decision(neural >= rule.neural_alone, f"neural {neural:.2f} vs {rule.neural_alone:.2f}")
    if phonetic is None:
        return Decision(False, "no phrase in the window")
    use_neural = rule.signals == FUSED and neural is not None
    bar = rule.min_frame_score - (rule.noisy_allowance if noisy else 0.0)
    fits = phonetic.frame_score >= bar and phonetic.worst_word >= rule.min_worst_word
    if phonetic.frame_score < rule.floor_frame_score or phonetic.phones_per_second < rule.min_phones_per_second:
        return Decision(False, "phonetic floor")
    if rule.use_rivals and phonetic.margin is not None and phonetic.margin < rule.min_margin:
        if use_neural and neural >= rule.neural_sure:
            return Decision(True, "neural overrules the rivals")
        return Decision(False, "a rival fits better")
    if fits:
        if use_neural and neural < rule.neural_veto:
            return Decision(False, "neural veto")
        return Decision(True, "phonetic fit")
    if use_neural and neural >= rule.neural_sure:
        return Decision(True, "neural rescue")
    return Decision(False, "phonetic fit too weak")
