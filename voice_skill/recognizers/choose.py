"""Building the recognizer the settings ask for; `auto` prefers Vosk when a model is present.

The PocketSphinx wake engine gets the judge (Whisper tiny.en, judging.py: wake engine v3)
when the settings ask for it, [recognition] judge:

- unset (None): JUDGE_BY_DEFAULT. Today that is off: measured on the evaluation voices, v3
  lets far fewer sound-alikes and ordinary sentences wake it than v2, but misses more real
  phrases in fan noise and right after other speech (docs/wake-engine.md). Were it on, where
  the judge cannot run (no CTranslate2 wheel on 32-bit Arm) or its model is damaged, one line
  would say why and it would listen without the judge.
- true (or --judge), and --wake-signals judge: required. Without it, it does not start
  (UserError: one line saying what to do).
- false (or --no-judge): off, not loaded.

The model's files are checked before listening starts (a changed or damaged model is refused
at start-up); the model itself loads in a background thread meanwhile (LoadingJudge), and the
first wake candidate waits for it if it comes sooner.

Only the fused engine and --wake-signals judge use it: phonetic and neural are one signal
alone, for comparison.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path

from voice_skill.errors import UserError
from voice_skill.intents import TriggerTable, load_triggers
from voice_skill.models import find_model
from voice_skill.recognizers.base import Recognizer
from voice_skill.recognizers.fusion import FUSED, JUDGE, NEURAL, PHONETIC, SIGNALS  # JUDGE: the judge deciding alone

log = logging.getLogger(__name__)

JUDGE_NAME = "the judge (Whisper tiny.en)"
# Whether the judge is on where the settings leave it unset. Off: on the evaluation bench v3
# heard fewer real phrases than v2 (fan noise, a phrase right after other speech); see
# docs/wake-engine.md for the numbers, and [recognition] judge = true to choose v3.
JUDGE_BY_DEFAULT = False
REPAIR = "run scripts/install again (it installs the judge's model again)"


@dataclass(frozen=True)
class JudgeStatus:
    """What became of the judge the settings ask for: loaded, off, or why not."""

    judge: object | None  # a judging.WhisperJudge (or a LoadingJudge standing in for one), or None
    wanted: bool | None  # [recognition] judge (or --judge / --no-judge); None: unset (JUDGE_BY_DEFAULT)
    used: bool  # whether the wake signals use a judge at all (fused and judge do)
    problem: str = ""  # why it is not there: JudgeUnavailable's or JudgeDamaged's line
    damaged: bool = False  # the model's files are there but not the ones this program knows

    def describe(self) -> str:
        """The end of the 'using PocketSphinx ...' line: the judge on, off or missing."""
        if self.judge is not None:
            return f" and {JUDGE_NAME}"
        if self.wanted is False:
            return "; the judge is off ([recognition] judge = false or --no-judge)"
        return ", without the judge" if self.used and self.problem else ""


def _uses_judge(signals: str) -> bool:
    return signals in (FUSED, JUDGE)


class LoadingJudge:
    """The judge, its model's files already checked, loading in a daemon thread once start()
    is called, while listening starts (CTranslate2 quantizes the weights as it loads them:
    about half a second). It stands in for the judging.WhisperJudge: whatever is asked of it
    waits until the model is loaded (and starts the loading if nothing did). A model that
    passed the check and still does not load (out of memory) is logged once as an error, and
    every use raises JudgeDamaged."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._loading: Future = Future()
        self._lock = threading.Lock()
        self._started = False

    def start(self) -> None:
        """Load the model in the background (once)."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._loading.set_running_or_notify_cancel()
        threading.Thread(target=self._load, name="judge", daemon=True).start()

    def _load(self) -> None:
        from voice_skill.recognizers.judging import JudgeDamaged, load_model

        try:
            self._loading.set_result(load_model(self.folder))
        except Exception as exc:  # MemoryError too: nothing may wait for it forever
            problem = f"the judge's speech model in {self.folder} does not load ({exc})"
            log.error("%s; wake phrases cannot be judged: %s, or set [recognition] judge = false", problem, REPAIR)
            self._loading.set_exception(JudgeDamaged(problem))

    def loaded(self):
        """The WhisperJudge, once it is loaded (JudgeDamaged if it did not load)."""
        self.start()
        return self._loading.result()

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("_loading", "_lock", "_started"):
            raise AttributeError(name)
        return getattr(self.loaded(), name)


def checked_judge_folder() -> Path:
    """The judge's model folder, checked as judging.load_judge checks it."""
    from voice_skill.recognizers.judging import checked_model

    return checked_model()


def judge_status(wanted: bool | None, signals: str, background: bool = False, by_default: bool = JUDGE_BY_DEFAULT) -> JudgeStatus:
    """Load the judge if the settings and the wake signals ask for it, its model's files
    checked first (unset: `by_default`). background: the files are checked now and the model
    loads in a thread (LoadingJudge). Never raises for a judge that cannot run: the status
    says why."""
    from voice_skill.recognizers.judging import JudgeDamaged, JudgeUnavailable, load_judge

    used = _uses_judge(signals)
    if wanted is False or not used or (wanted is None and not by_default and signals != JUDGE):
        return JudgeStatus(None, wanted, used)
    try:
        return JudgeStatus(LoadingJudge(checked_judge_folder()) if background else load_judge(), wanted, used)
    except JudgeUnavailable as exc:
        return JudgeStatus(None, wanted, used, str(exc))
    except JudgeDamaged as exc:
        return JudgeStatus(None, wanted, used, str(exc), damaged=True)


def install_fix(status: JudgeStatus) -> str:
    """What installs a judge that is missing or damaged (32-bit Arm has none to install)."""
    return REPAIR if status.damaged else "run scripts/install again"


def required_judge_error(status: JudgeStatus, signals: str) -> UserError:
    """The one line for a judge that was asked for (--judge, [recognition] judge = true or
    --wake-signals judge) and cannot be had."""
    fix = install_fix(status)
    if signals == JUDGE:
        return UserError(f"--wake-signals judge: {status.problem}; {fix}, or use --wake-signals fused")
    return UserError(f"[recognition] judge = true (or --judge): {status.problem}; {fix}, or set [recognition] judge = false (or use --no-judge)")


def load_wanted_judge(wanted: bool | None, signals: str, report=print, by_default: bool = JUDGE_BY_DEFAULT) -> JudgeStatus:
    """The judge for the wake engine (loading in the background), off, or missing. Asked for
    and not available: UserError; on by default (`by_default`, where the setting is unset)
    and not available: one line to `report` saying why and that it listens without the
    judge (32-bit Arm: every start, once)."""
    if signals == JUDGE and wanted is False:
        raise UserError("--wake-signals judge needs the judge, but [recognition] judge = false (or --no-judge) turns it off; drop one of them")
    status = judge_status(wanted, signals, background=True, by_default=by_default)
    if status.judge is None and status.problem:
        if status.wanted or signals == JUDGE:
            raise required_judge_error(status, signals)
        repair = f"; to repair it, {REPAIR}" if status.damaged else ""
        report(f"voice-skill: {status.problem}; listening with the wake engine without the judge{repair}")
    return status


def trigger_table(recognition) -> TriggerTable:
    """The trigger phrases [recognition] triggers (or --triggers) names; unset: the bundled
    phrases/triggers.toml."""
    from voice_skill.phrases import bundled_phrases_dir

    return load_triggers(Path(recognition.triggers) if recognition.triggers else bundled_phrases_dir() / "triggers.toml")


def uses_vosk(recognition) -> tuple[bool, Path | None]:
    """Whether build_recognizer builds Vosk for these settings (--engine vosk, or auto with a
    model found), and the model folder it would load (None: none found)."""
    model_path = find_model(recognition.model)
    return recognition.engine == "vosk" or (recognition.engine == "auto" and model_path is not None), model_path


def build_recognizer(recognition, table: TriggerTable, report=print, announce=None) -> Recognizer:
    """recognition: the [recognition] settings (engine auto | vosk | pocketsphinx, model,
    wake_signals, judge). `announce` (default: `report`) gets one line saying which engine is
    used (information: -q leaves it out), `report` one more if the neural wake signal or the
    judge cannot run on this machine (a warning)."""
    announce = announce or report
    engine = recognition.engine
    phrases, decoys = table.phrases(), list(table.decoys)
    vosk, model_path = uses_vosk(recognition)
    if vosk:
        if model_path is None:
            raise UserError("--engine vosk needs a model: run 'voice-skill model download' or pass --model PATH")
        from voice_skill.recognizers.vosk_recognizer import VoskRecognizer, load_model

        recognizer = VoskRecognizer(load_model(model_path), phrases, decoys)
        announce(f"voice-skill: using Vosk with the model in {model_path}")
        return recognizer
    if engine not in ("auto", "pocketsphinx"):
        raise UserError(f"--engine {engine}: unknown engine; use auto, vosk or pocketsphinx")
    return build_wake_engine(recognition.wake_signals, table, report, engine == "auto", judge=recognition.judge, announce=announce)


def build_wake_engine(
    signals: str, table: TriggerTable, report=print, auto: bool = False, options=None, judge: bool | None = False, announce=None,
) -> Recognizer:
    """The PocketSphinx wake engine with the wake signals asked for (`announce`, default
    `report`: the line saying so; `report`: what it listens without). `judge`: [recognition]
    judge (None: unset, JUDGE_BY_DEFAULT; True: required; False: off). The skill passes
    its setting (build_recognizer); for other callers (tests, bench, training) it stays off
    unless they ask, so an engine they build is the one they built before the judge."""
    from voice_skill.recognizers.wake_engine import EngineOptions, WakeEngine

    if signals not in SIGNALS:
        raise UserError(f"--wake-signals {signals}: unknown; use {', '.join(SIGNALS)}")
    options = options or EngineOptions()
    options = replace(options, rule=replace(options.rule, signals=signals))
    judged = load_wanted_judge(judge, signals, report)
    neural = None
    # With the judge, v3 decides without the neural signal (fusion.decide_judged): it is not loaded.
    if signals not in (PHONETIC, JUDGE) and judged.judge is None:
        from voice_skill.recognizers.neural import NeuralUnavailable, load_detector

        try:
            neural = load_detector(Path(options.neural_model) if options.neural_model else None)
        except NeuralUnavailable as exc:
            if signals == NEURAL:
                raise UserError(f"--wake-signals neural: {exc}; use --wake-signals phonetic") from None
            report(f"voice-skill: {exc}; listening with the phonetic wake engine alone")
    recognizer = WakeEngine(table, options, neural, judge=judged.judge)
    if isinstance(judged.judge, LoadingJudge):
        # Only now: loading it while the engine is built slowed that down (the GIL: 0.23 -> 0.58 s).
        judged.judge.start()
    how = {
        FUSED: "phonetic and neural wake signals" if neural else "phonetic wake signal" if judged.judge is None else "spotter",
        PHONETIC: "phonetic wake signal only",
        NEURAL: "neural wake signal only",
        JUDGE: "judge (Whisper tiny.en) only",
    }[signals]
    suffix = "; for Vosk, run 'voice-skill model download'" if auto else ""
    judging = judged.describe() if signals != JUDGE else ""
    (announce or report)(f"voice-skill: using PocketSphinx (bundled English model) with the {how}{judging}{suffix}")
    return recognizer
