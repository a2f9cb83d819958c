"""The wake engine: PocketSphinx (bundled English model) plus a neural second signal.

Stages, each in a module of its own:

    audio -> front end -> spotting -> verification -> fusion -> Heard
             (frontend.py) (spotting.py) (verification.py) (fusion.py)
                                          neural score (neural.py) --^

1. The front end cleans noisy audio and cuts the stream into utterances (silence goes no
   further: a quiet night costs almost nothing).
2. The spotter follows each utterance with a grammar in which a wake phrase (or a decoy) may
   end a longer utterance; commands must be the whole utterance.
3. For a wake phrase, the verifier decodes the candidate's window again: how well its words
   fit, and whether a generated sound-alike fits better. An utterance short enough to be the
   phrase said by itself is also decoded whole in the grammar of the table and its decoys
   (the test of the engine before v2).
4. The neural detector scores the same moment of audio.
5. The fusion rule accepts or rejects; the -v log names the rule and shows every score.

Commands ("another one", "speak softer") are checked for fit and speaking rate only
(fusion.command_fits); whether they may act (inside the follow-up window) is the skill's
decision.
"""

from __future__ import annotations

import logging
import math
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

import numpy as np

from voice_skill.errors import UserError
from voice_skill.intents import WAKE_INTENTS, TriggerTable
from voice_skill.recognizers.base import SAMPLE_RATE, Heard
from voice_skill.recognizers.frontend import NOISE_SUPPRESSION_LEVEL, FrontEnd, Speech, SpeechEnded, SpeechStarted
from voice_skill.recognizers.fusion import (
    FUSED,
    JUDGE,
    NEURAL,
    PHONETIC,
    FusionRule,
    accepted_phrase,
    command_bars,
    command_fits,
    command_judge_matters,
    command_judged,
    decide,
    decide_judged,
    judge_matters,
    neural_matters,
)
from voice_skill.recognizers.judging import Judgement
from voice_skill.recognizers.sphinx import Grammar, SphinxDecoder, model_paths, read_pronunciations
from voice_skill.recognizers.spotting import Candidate, PhoneticSpotter
from voice_skill.recognizers.verification import ALL_RIVALS, BOTH, DECOYS_ONLY, MIN_MARGIN, PhoneticEvidence, PhoneticVerifier

log = logging.getLogger(__name__)

MIN_UTTERANCE_SECONDS = 0.25
WINDOW_LEAD = 0.15  # seconds of audio before a candidate's start that the verifier sees
JUDGE_LEAD = 0.5  # seconds before the utterance's start that the judge hears
NEURAL_AUDIO_SECONDS = 3.0
NEURAL_END_SPREAD = 0.3  # neural windows may end this far either side of the speech end
RIVAL_WINS, WAKE_WINS = MIN_MARGIN, -MIN_MARGIN  # the margins at either extreme


@dataclass(frozen=True)
class EngineOptions:
    rule: FusionRule = field(default_factory=FusionRule)
    noise_suppression: int = NOISE_SUPPRESSION_LEVEL
    beam: float = 1e-60
    generated_confusions: bool = True  # the verifier's check against generated sound-alikes
    neural_model: str | None = None  # path of other weights; None: the packaged model


def phone_counts(phrases, pronunciations) -> dict[str, int]:
    return {p: sum(len(pronunciations[w][0][1].split()) for w in p.split()) for p in phrases}


def _sound_alikes(wake: tuple[str, ...], dictionary: str, words: set[str], exclude: set[str]) -> tuple[tuple[str, ...], dict]:
    """The generated sound-alikes of the wake phrases, and their words' dictionary entries.
    One pass over the dictionary: the grammar's words and the common words that sound-alikes
    are made of."""
    from voice_skill.recognizers.confusions import confusions, lexicon_from, read_frequencies

    frequency = read_frequencies()
    lexicon = lexicon_from(read_pronunciations(dictionary, words | set(frequency)), frequency)
    found = tuple(dict.fromkeys(c.text for p in wake for c in confusions(p, lexicon, exclude=exclude)))
    return found, {w: lexicon.entries[w] for p in found for w in p.split()}


def _in_background(name: str, work, *args) -> Future:
    """work(*args) in a daemon thread, its result in a Future. A program that stops while it
    runs does not wait for it (a ThreadPoolExecutor's thread is joined at exit)."""
    future: Future = Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(work(*args))
            except BaseException as exc:
                future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


class WakeEngine:
    name = "pocketsphinx"

    def __init__(self, table: TriggerTable, options: EngineOptions = EngineOptions(), neural=None, observer=None, judge=None):
        self.observer = observer  # called with every WakeDecision and CommandDecision (for tuning and tests)
        self.options = options
        self.rule = options.rule
        hmm, dictionary = model_paths()
        wake = tuple(p for intent in WAKE_INTENTS for p in table.intents.get(intent, ()))
        commands = tuple(p for intent, phrases in table.intents.items() if intent not in WAKE_INTENTS for p in phrases)
        self._intent_of = {p: intent for intent, phrases in table.intents.items() for p in phrases}
        self._wake = set(wake)
        self._wake_phrases = wake
        self._commands = set(commands)
        decoys: tuple[str, ...] = tuple(table.decoys)
        words = {w for p in wake + commands + decoys for w in p.split()}
        self._generated: Future | None = None  # the generated sound-alikes, being made
        pronunciations = read_pronunciations(dictionary, words)
        if options.generated_confusions and wake and judge is None:  # the judge hears what a sound-alike would have caught
            # The sound-alikes are made in the background while listening starts (the pass
            # over the dictionary for the common words they are made of is most of the
            # start-up time); the first wake candidate waits for them.
            self._generated = _in_background("sound-alikes", _sound_alikes, wake, dictionary, words, set(self._intent_of) | set(decoys))
        for phrase in wake + commands:
            missing = [w for w in phrase.split() if w not in pronunciations]
            if missing:
                raise UserError(f"trigger phrase {phrase!r}: word(s) {', '.join(missing)} are not in the PocketSphinx dictionary; choose other words")
        decoys = tuple(d for d in decoys if all(w in pronunciations for w in d.split()))
        self._decoys = set(decoys)
        counts = phone_counts(wake + commands, pronunciations)
        # The judge hears the audio as it came in, not the noise-suppressed audio (on dev, 341
        # of 504 phrases instead of 324 at the same near misses): its front end keeps it.
        self.frontend = FrontEnd(options.noise_suppression, keep_raw=judge is not None)
        self._decoder = decoder = SphinxDecoder(hmm, pronunciations, beam=options.beam)
        # The longest a phrase said by itself can take: its phones at a slow 5.5 a second.
        self._longest_said = {p: n / 5.5 + 0.4 for p, n in counts.items()}
        max_phrase_seconds = max(self._longest_said.values())
        self._max_phrase_seconds = max_phrase_seconds
        self.spotter = PhoneticSpotter(decoder, Grammar(whole=commands, ending=wake + decoys), max_phrase_seconds)
        self.verifier = PhoneticVerifier(decoder, wake, commands, counts, decoys)
        self.neural = neural
        self.judge = judge  # a judging.WhisperJudge, or None (not installed, or turned off)
        self._neural_phrases: set[str] = set()
        if neural is not None:
            trained_on = neural.classifier.meta.get("phrases")
            self._neural_phrases = set(trained_on) & self._wake if trained_on else self._wake
        self._utterance = 0
        self._speech_start = 0.0
        self._speech_bytes = 0

    # ---------------------------------------------------------------- streaming interface

    def feed(self, pcm: bytes) -> list[Heard]:
        return self._handle(self.frontend.feed(pcm))

    def finish(self) -> list[Heard]:
        return self._handle(self.frontend.finish())

    def restart(self) -> None:
        """A new stream: forget the audio, the background estimate and any utterance."""
        self.spotter.cancel()
        self.frontend = FrontEnd(self.options.noise_suppression, keep_raw=self.judge is not None)
        self._speech_bytes = 0

    def reset(self) -> None:
        """Forget the current utterance (the skill's own voice)."""
        self.spotter.cancel()
        self._speech_bytes = 0

    def _handle(self, events) -> list[Heard]:
        results: list[Heard] = []
        for event in events:
            if isinstance(event, SpeechStarted):
                self._utterance += 1
                self._speech_start = event.at
                self._speech_bytes = 0
                self.spotter.start(event.at, event.preroll)
            elif isinstance(event, Speech):
                self._speech_bytes += len(event.pcm)
                if not self.spotter.active:  # after reset(): the rest of this utterance is ignored
                    continue
                self.spotter.process(event.pcm)
            elif isinstance(event, SpeechEnded):
                results.extend(self._utterance_ended(event.at))
        return results

    # ---------------------------------------------------------------- decisions

    def _window(self, start: float) -> bytes:
        """Audio from `start` (stream seconds) to now."""
        seconds = max(0.0, self.frontend.now - start)
        return self.frontend.history(seconds)

    def _utterance_ended(self, end: float) -> list[Heard]:
        duration = self._speech_bytes / 2 / SAMPLE_RATE
        where = f"utterance {self._utterance} ({duration:.2f} s, ending at {end:.2f} s)"
        if not self.spotter.active:
            return []
        candidate = self.spotter.end()
        if duration < MIN_UTTERANCE_SECONDS:
            log.debug("%s: too short for a phrase", where)
            return []
        if self.rule.signals == NEURAL:
            return self._neural_alone(where, end, self._neural_scores(end))
        if self.judge is not None and self.rule.signals in (FUSED, JUDGE):
            return self._judged(where, candidate, end)
        if candidate is None:
            heard = " ".join(w for w in self.spotter.last_hypothesis.split() if not w.startswith("filler_")) or "nothing"
            log.debug("%s: heard %r, which does not end in a phrase -> nothing", where, heard)
            return []
        return self._judge(where, candidate, end)

    def _neural_scores(self, end: float) -> dict[str, float] | None:
        if self.neural is None:
            return None
        pcm = self.frontend.history(NEURAL_AUDIO_SECONDS)
        audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        offset = self.frontend.now - len(audio) / SAMPLE_RATE  # stream seconds of audio[0]
        at = end - offset
        return self.neural.score(audio, (at - NEURAL_END_SPREAD, at + NEURAL_END_SPREAD)).scores

    def _neural_alone(self, where: str, end: float, scores: dict[str, float] | None) -> list[Heard]:
        if not scores:
            return []
        intent, best = max(scores.items(), key=lambda kv: kv[1])
        decision = decide(self.rule, None, best, self.frontend.suppressing)
        log.debug("%s: neural %s %.2f: %s (%s)", where, intent, best, "accept" if decision.accept else "reject", decision.rule)
        if not decision.accept:
            return []
        phrase = next((p for p, i in self._intent_of.items() if i == intent and p in self._wake), None)
        if phrase is None:
            return []
        return [Heard(phrase, self._utterance, self.frontend.now, best, True, end - self._speech_bytes / 2 / SAMPLE_RATE, end)]

    def _take_sound_alikes(self) -> None:
        """The generated sound-alikes join the verifier's rivals (once, when first needed)."""
        if self._generated is None:
            return
        sound_alikes, pronunciations = self._generated.result()
        self._generated = None
        self._decoder.know(pronunciations)
        self.verifier.add_rivals(sound_alikes)

    def _judge(self, where: str, candidate: Candidate, end: float) -> list[Heard]:
        noisy = self.frontend.suppressing
        start = candidate.start
        if candidate.text in self._commands:
            heard = self._command(where, candidate, end, noisy)
            if heard is not None:
                return heard
            start = self._speech_start  # the whole utterance fits a wake phrase better
        self._take_sound_alikes()
        # A wake phrase or a decoy ends the utterance: weigh the best wake phrase against
        # everything else that could end it, in the candidate's window. A decoy may be only
        # the end of a wake phrase ("say that"), and the spotter may have taken a wake
        # phrase's first words for other speech: then, or when no wake phrase fits the
        # spotter's window, the window holds as much of the utterance's end as a wake phrase
        # said slowly could take.
        longest = max(self._speech_start, end - self._max_phrase_seconds)
        if candidate.text not in self._wake:
            start = min(start, longest)
        alone = self._speech_bytes / 2 / SAMPLE_RATE <= self._max_phrase_seconds
        against = self._rivals_for(alone)
        said = self._said_by_itself(alone)
        # The costly parts are computed only where they could change the decision: the
        # neural score, then the rivals (hundreds of sound-alikes).
        scores: dict[str, dict[str, float] | None] = {}

        def neural_for(fit: PhoneticEvidence, window_start: float) -> dict[str, float] | None:
            if fit.text not in scores:
                # The neural windows end around the phrase's end (the utterance may go on a little).
                phrase_end = window_start + fit.phrase_end if fit.phrase_end is not None else end
                scores[fit.text] = self._neural_scores(phrase_end)
            return scores[fit.text]

        def asks_neural(fit: PhoneticEvidence, margins: tuple[float, ...] = ()) -> bool:
            """Whether the neural score could change the decision (with the rivals still to
            weigh: at either extreme margin)."""
            if self.rule.signals == PHONETIC or fit.text not in self._neural_phrases or self.neural is None:
                return False
            fits = [replace(fit, margin=m, decoy_margin=m) for m in margins] or [fit]
            return self.observer is not None or any(neural_matters(self.rule, f, noisy) for f in fits)

        def verify(window: bytes) -> PhoneticEvidence | None:
            window_start = self.frontend.now - len(window) / 2 / SAMPLE_RATE

            def rivals_matter(fit: PhoneticEvidence) -> bool:
                if self.observer is not None:
                    return True
                fit = replace(fit, **said)
                score = None
                if asks_neural(fit, margins=(RIVAL_WINS, WAKE_WINS)):
                    score = (neural_for(fit, window_start) or {}).get(self._intent_of[fit.text])
                wins = decide(self.rule, replace(fit, margin=WAKE_WINS, decoy_margin=WAKE_WINS), score, noisy).accept
                loses = decide(self.rule, replace(fit, margin=RIVAL_WINS, decoy_margin=RIVAL_WINS, rival_is_decoy=True), score, noisy).accept
                return wins != loses

            evidence = self.verifier.verify_wake(window, compare=rivals_matter, against=against)
            if evidence is not None:
                evidence = replace(evidence, **said)
            if evidence is not None and asks_neural(evidence):
                neural_for(evidence, window_start)
            return evidence

        evidence = verify(self._window(start - WINDOW_LEAD))
        if evidence is None and longest < start:
            evidence = verify(self._window(longest - WINDOW_LEAD))
        if evidence is None and said.get("whole_wake"):
            # The loop took the phrase's words, yet the whole utterance is a wake phrase.
            evidence = PhoneticEvidence(said["whole"], said["whole_score"], said["whole_score"], said["whole_rate"], **said)
        if evidence is None:
            log.debug("%s: ends with %r, but no wake phrase fits its window -> reject", where, candidate.text)
            heard = candidate.text if candidate.text in self._decoys else ""  # a decoy may be reported as heard; a command that did not fit never
            return [Heard(heard, self._utterance, self.frontend.now, 0.0, True, candidate.start, end)]
        text = evidence.text
        intent = self._intent_of[text]
        neural = scores.get(text)
        asked = text in scores
        score = neural.get(intent) if neural is not None else None
        decision = decide(self.rule, evidence, score, noisy)
        if self.observer is not None:
            self.observer(WakeDecision(text, candidate, evidence, dict(neural) if neural else None, noisy, decision.accept, decision.rule))
        log.debug(
            "%s: %r%s (spotted %r): %s%s -> %s (%s)",
            where, text, " after other speech" if candidate.after_speech else "", candidate.text, evidence.describe(),
            _neural_note(score, asked, self.neural is not None, self.rule.signals),
            "accept" if decision.accept else "reject", decision.rule,
        )
        heard = accepted_phrase(decision, evidence) if decision.accept else (evidence.rival or "")
        confidence = _confidence(evidence) if decision.accept else 0.0
        return [Heard(heard, self._utterance, self.frontend.now, confidence, True, candidate.start, end)]

    # ---------------------------------------------------------------- v3: the judge decides with the spotter

    def _judge_window(self) -> np.ndarray:
        """The utterance as the judge hears it: from JUDGE_LEAD before its start (Whisper
        hears a word's onset better with a little of what came before) to now."""
        seconds = max(0.0, self.frontend.now - (self._speech_start - JUDGE_LEAD))
        pcm = self.frontend.raw_history(seconds)
        return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0

    def _judged(self, where: str, candidate: Candidate | None, end: float) -> list[Heard]:
        """Wake engine v3: the spotter's candidate, its phonetic fit (no rivals), and the
        judge's scores; the fusion rule (fusion.decide_judged) accepts or rejects."""
        noisy = self.frontend.suppressing
        alone = self._speech_bytes / 2 / SAMPLE_RATE <= self._max_phrase_seconds
        start = candidate.start if candidate is not None else self._speech_start
        if candidate is not None and candidate.text in self._commands:
            heard = self._judged_command(where, candidate, end, noisy)
            if heard is not None:
                return heard
            start = self._speech_start
        if candidate is None and self.observer is None:
            heard = " ".join(w for w in self.spotter.last_hypothesis.split() if not w.startswith("filler_")) or "nothing"
            log.debug("%s: heard %r, which does not end in a phrase -> nothing", where, heard)
            return []
        longest = max(self._speech_start, end - self._max_phrase_seconds)
        if candidate is None or candidate.text not in self._wake:
            start = min(start, longest)
        no_rivals = lambda evidence: False  # noqa: E731  (the judge hears what a rival would)
        evidence = self.verifier.verify_wake(self._window(start - WINDOW_LEAD), compare=no_rivals)
        if evidence is None and longest < start:
            evidence = self.verifier.verify_wake(self._window(longest - WINDOW_LEAD), compare=no_rivals)
        # Rule 0's decode of the whole utterance, only where the rule uses it (or for tuning).
        whole = self.rule.signals == FUSED and (self.rule.judged_whole_frame_score is not None or self.observer is not None)
        said = self._said_by_itself(alone) if whole else {"alone": alone}
        if evidence is not None:
            evidence = replace(evidence, **said)
        elif said.get("whole_wake"):
            evidence = PhoneticEvidence(said["whole"], said["whole_score"], said["whole_score"], said["whole_rate"], **said)
        after_speech = not alone or (candidate is not None and candidate.after_speech)
        judgement = None
        if self.observer is not None or judge_matters(self.rule, evidence, noisy):
            # After other speech the transcript's earlier words are weighed for the spotter's
            # intent only (each prefix costs a batch of the judge's); with no phrase fitting,
            # for every phrase.
            spotted = evidence.whole if evidence is not None and evidence.whole_wake and evidence.whole else evidence.text if evidence else None
            same = tuple(p for p in self._wake_phrases if spotted and self._intent_of[p] == self._intent_of[spotted]) or None
            judgement = self.judge.judge(self._judge_window(), self._wake_phrases, after_speech, after_words=same)
        decision, phrase = decide_judged(self.rule, evidence, judgement, self._intent_of, noisy)
        if self.observer is not None:
            self.observer(JudgedDecision(candidate, evidence, judgement, noisy, decision.accept, decision.rule, phrase))
        log.debug(
            "%s: spotted %r%s: %s; %s -> %s (%s)",
            where, candidate.text if candidate else None, " after other speech" if after_speech else "",
            evidence.describe() if evidence else "no wake phrase fits", judgement.describe(phrase) if judgement else "judge not asked (no score would change this)",
            "accept " + repr(phrase) if decision.accept else "reject", decision.rule,
        )
        if not decision.accept:
            heard = candidate.text if candidate is not None and candidate.text in self._decoys else ""
            return [Heard(heard, self._utterance, self.frontend.now, 0.0, True, start, end)]
        confidence = math.exp(judgement.scores[phrase].score) if judgement and phrase in judgement.scores else _confidence(evidence)
        return [Heard(phrase, self._utterance, self.frontend.now, confidence, True, start, end)]

    def _judged_command(self, where: str, candidate: Candidate, end: float, noisy: bool) -> list[Heard] | None:
        """A command must be the whole utterance; its fit and the judge's score of it decide
        (fusion.command_judged). None: it is not a command, and the utterance may be a wake
        phrase after all."""
        if candidate.after_speech:
            log.debug("%s: the command %r after other speech is not a command", where, candidate.text)
            return [Heard("", self._utterance, self.frontend.now, 0.0, True, candidate.start, end)]
        if self._speech_bytes / 2 / SAMPLE_RATE > self._longest_said[candidate.text]:
            log.debug("%s: longer than the command %r said slowly: not a command", where, candidate.text)
            return None
        evidence = self.verifier.verify_command(self._window(self._speech_start - WINDOW_LEAD))
        phrase = evidence.text if evidence is not None else candidate.text
        judgement = None
        if self.observer is not None or command_judge_matters(self.rule, evidence, noisy):
            judgement = self.judge.judge(self._judge_window(), (phrase,), after_speech=False, transcribe=log.isEnabledFor(logging.DEBUG))
        heard, rule = command_judged(self.rule, evidence, judgement.scores[phrase].score if judgement else None, noisy)
        if self.observer is not None:
            self.observer(JudgedCommand(candidate.text, phrase, candidate, evidence, judgement, noisy, heard))
        log.debug(
            "%s: command %r: %s; %s -> %s (%s)",
            where, phrase, evidence.describe() if evidence else "a wake phrase fits better",
            judgement.describe(phrase) if judgement else "judge not asked", "heard" if heard else "not a command", rule,
        )
        if not heard:
            return None
        confidence = math.exp(judgement.scores[phrase].score) if judgement else (_confidence(evidence) if evidence else 0.0)
        return [Heard(phrase, self._utterance, self.frontend.now, confidence, True, candidate.start, end)]

    def _rivals_for(self, alone: bool) -> str:
        """What the wake phrase is weighed against. An utterance no longer than a phrase said
        by itself may be weighed against the trigger table's decoys only
        (FusionRule.alone_rivals), and then rule 0 weighs it against the generated
        sound-alikes too. The tuning observer gets both margins."""
        if self.observer is not None:
            return BOTH
        if alone and self.rule.alone_rivals == DECOYS_ONLY:
            return BOTH if self.rule.whole_frame_score is not None and self.rule.use_rivals else DECOYS_ONLY
        return ALL_RIVALS

    def _said_by_itself(self, alone: bool) -> dict:
        """The evidence fields of an utterance said by itself (PhoneticEvidence.alone, whole,
        whole_score, whole_rate, whole_wake): what the whole utterance is, in the grammar of
        the table (rule 0)."""
        said: dict = {"alone": alone}
        if alone and self.rule.signals != NEURAL:
            whole = self.verifier.verify_whole(self._window(self._speech_start - WINDOW_LEAD))
            if whole is not None:
                said.update(whole=whole.text, whole_score=whole.frame_score, whole_rate=whole.phones_per_second, whole_wake=whole.text in self._wake)
        return said

    def _command(self, where: str, candidate: Candidate, end: float, noisy: bool) -> list[Heard] | None:
        """A command must be the whole utterance, and its words must fit. None: it does not
        fit, and the utterance may be a wake phrase after all (the caller looks at that)."""
        if candidate.after_speech:
            log.debug("%s: the command %r after other speech is not a command", where, candidate.text)
            return [Heard("", self._utterance, self.frontend.now, 0.0, True, candidate.start, end)]
        if self._speech_bytes / 2 / SAMPLE_RATE > self._longest_said[candidate.text]:
            # Longer than the command said slowly: other speech the search took for silence.
            log.debug("%s: longer than the command %r said slowly: not a command", where, candidate.text)
            return None
        window = self._window(self._speech_start - WINDOW_LEAD)
        evidence = self.verifier.verify_command(window)
        fits = evidence is not None and command_fits(self.rule, evidence, noisy)
        if self.observer is not None:
            self.observer(CommandDecision(candidate.text, candidate, evidence, noisy, fits))
        log.debug(
            "%s: command %r: %s -> %s (%s)",
            where, candidate.text, evidence.describe() if evidence else "a wake phrase fits better",
            "heard" if fits else "not a command", command_bars(self.rule, evidence.text if evidence else candidate.text, noisy),
        )
        if not fits:
            return None
        return [Heard(evidence.text, self._utterance, self.frontend.now, _confidence(evidence), True, candidate.start, end)]


@dataclass(frozen=True)
class WakeDecision:
    """Everything that went into one wake-phrase decision."""

    text: str
    candidate: Candidate
    phonetic: PhoneticEvidence
    neural: dict[str, float] | None
    noisy: bool
    accept: bool
    rule: str


@dataclass(frozen=True)
class CommandDecision:
    """Everything that went into one command decision (a command spotted as the whole
    utterance, no longer than the command said slowly, and decoded again)."""

    text: str  # the command the spotter found
    candidate: Candidate
    phonetic: PhoneticEvidence | None  # None: a wake phrase fits the utterance better
    noisy: bool
    heard: bool


@dataclass(frozen=True)
class JudgedDecision:
    """Everything that went into one wake decision of v3 (the spotter, the phonetic fit
    without rivals, the judge)."""

    candidate: Candidate | None
    phonetic: PhoneticEvidence | None
    judgement: Judgement | None  # None: not asked (no score would have changed the decision)
    noisy: bool
    accept: bool
    rule: str
    phrase: str | None  # the phrase accepted (or the best one weighed)


@dataclass(frozen=True)
class JudgedCommand:
    """Everything that went into one command decision of v3."""

    text: str  # the command the spotter found
    phrase: str  # the command weighed (the decode of the whole utterance, else the spotter's)
    candidate: Candidate
    phonetic: PhoneticEvidence | None  # None: a wake phrase fits the utterance better
    judgement: Judgement | None
    noisy: bool
    heard: bool


def _neural_note(score: float | None, asked: bool, available: bool, signals: str) -> str:
    if score is not None:
        return f", neural {score:.2f}"
    if signals == PHONETIC:
        return ""
    if not available:
        return ", neural off"
    return ", neural not asked (no score would change this)" if not asked else ", neural: no score"


def _confidence(evidence: PhoneticEvidence) -> float:
    return max(0.0, min(1.0, 1.0 + evidence.frame_score / 6.0))
