"""`voice-skill check`: a set-up helper for the bedside, a couple of minutes at most.

It shows the microphone's live level as a bar for a few seconds (the audio is measured and
dropped, never kept), plays the chime and one sentence on the speaker, prints what the skill
would use (engine, model, the judge, voice, config and state files; a Vosk model, with the
trigger phrases, and the judge's model are checked and loaded as 'run' does), and ends with
what to fix. Exit status 0 when nothing needs fixing, 1 otherwise.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voice_skill.errors import UserError
from voice_skill.settings import STATE_FILES, VOICE_FILE, Settings, config_dir, state_dir

SENTENCE = "Hello. This is voice skill. If you can hear me, the speaker works."
BAR_WIDTH = 40
FLOOR_DBFS = -70.0  # the bar's empty end
QUIET_DBFS = -60.0  # a microphone whose loudest 100 ms stays below this hears next to nothing


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


def level_bar(dbfs: float) -> str:
    filled = int(round(BAR_WIDTH * max(0.0, min(1.0, (dbfs - FLOOR_DBFS) / -FLOOR_DBFS))))
    return "#" * filled + "." * (BAR_WIDTH - filled)


def dbfs(block: np.ndarray) -> float:
    samples = block.astype(np.float32) / 32768.0
    return 20 * math.log10(float(np.sqrt(np.mean(samples * samples))) + 1e-9)


def check_microphone(settings: Settings, seconds: float, out) -> tuple[str, list[str]]:
    """Listen for `seconds`, drawing the level; (summary line, fixes)."""
    from voice_skill.audio import DeviceLost, Microphone, resolve_device

    try:
        mic = Microphone(resolve_device(settings.audio.input_device, "input"), settings.audio.input_rate)
    except UserError as exc:
        return f"microphone: {exc}", ["plug in a USB microphone, or choose one with [audio] input_device (see 'voice-skill devices')"]
    loudest, blocks = FLOOR_DBFS, 0
    deadline = time.monotonic() + seconds
    try:
        print(f"microphone: listening for {seconds:g} s; speak, or clap (nothing is kept) ...", file=out)
        for block in mic.blocks():
            level = dbfs(block)
            loudest = max(loudest, level)
            blocks += 1
            print(f"\r  level {level_bar(level)} {level:6.1f} dBFS", end="", file=out, flush=True)
            if time.monotonic() >= deadline:
                break
    except DeviceLost as exc:
        return f"microphone: lost while listening ({exc})", ["check the microphone's cable and 'voice-skill devices'"]
    finally:
        mic.close()
        print(file=out)
    summary = f"microphone: {mic.rate} Hz, loudest {loudest:.1f} dBFS over {blocks} blocks"
    if blocks == 0:
        return summary, ["the microphone delivered no audio: choose another with [audio] input_device"]
    if loudest < QUIET_DBFS:
        return summary, ["the microphone hears next to nothing: raise its capture level (alsamixer, F4) or move it closer"]
    return summary, []


def check_speaker(settings: Settings, voice, engine) -> tuple[list[str], list[str]]:
    """Play the chime and one sentence; (lines, fixes). `engine`: the SpeechEngine, or what is
    wrong with the configured one (text)."""
    from voice_skill.audio import Speaker, chime, resolve_device
    from voice_skill.speech import EngineUnavailable, SpeechError, Synthesizer, UnknownVoice

    lines, fixes = [], []
    if isinstance(engine, str):  # a Piper voice that is missing or not installed
        lines.append(f"speech: {engine}")
        fixes.append('fix [speech] engine or piper_voice as the line above says, or set [speech] engine = "pyttsx3"')
    try:
        speaker = Speaker(resolve_device(settings.audio.output_device, "output"))
    except UserError as exc:
        return lines + [f"speaker: {exc}"], fixes + ["connect a speaker, or choose one with [audio] output_device (see 'voice-skill devices')"]
    lines.append(f"speaker: {speaker.name}: playing the chime, then a sentence")
    playback = speaker.play(chime(volume=voice.volume))
    playback.wait(5)
    if playback.error is not None:
        return lines + [f"speaker: failed ({playback.error})"], fixes + ["choose another speaker with [audio] output_device"]
    if isinstance(engine, str):
        return lines, fixes  # the chime only
    with Synthesizer(voice, engine=engine) as synthesizer:
        try:
            synthesizer.start()
            if voice.voice and engine.name == "pyttsx3":
                synthesizer.check_voice(voice.voice)
            sound = synthesizer.render(SENTENCE)
        except UnknownVoice:
            return lines + [f"voice: espeak-ng has no voice {voice.voice!r}"], ["set [speech] voice to one that 'espeak-ng --voices=en' lists, or remove it"]
        except SpeechError as exc:
            if engine.name == "piper":
                what = "use a Piper .onnx voice with its .onnx.json" if isinstance(exc, EngineUnavailable) and exc.problem == "voice" else "reinstall Piper: scripts/install --natural-voice"
                return lines + [f"speech: Piper unavailable ({exc})"], [f'{what}, or set [speech] engine = "pyttsx3"']
            return lines + [f"speech: unavailable ({exc})"], ["install espeak-ng (sudo apt install espeak-ng), or run scripts/install again"]
    playback = speaker.play(sound)
    playback.wait(sound.duration + 10)
    if playback.error is not None:
        fixes.append("the speaker failed during the sentence: choose another with [audio] output_device")
    return lines, fixes


def describe_judge(recognition) -> tuple[str, list[str]]:
    """The judge as 'run' would have it (loaded, its model checked): (line, fixes)."""
    from voice_skill.recognizers.choose import JUDGE, install_fix, judge_status

    signals = recognition.wake_signals
    if recognition.judge is False:
        if signals == JUDGE:
            return "judge: off ([recognition] judge = false), but [recognition] wake_signals = judge needs it", ["set [recognition] judge = true, or another wake_signals"]
        return "judge: off ([recognition] judge = false)", []
    status = judge_status(recognition.judge, signals)
    if not status.used:
        return f"judge: not used with wake signals {signals} (one signal alone)", []
    if status.judge is None and not status.problem:  # unset, and off by default (choose.JUDGE_BY_DEFAULT)
        return "judge: off (the default; [recognition] judge = true turns it on: fewer false wakes, more missed phrases in noise)", []
    if status.judge is not None:
        return f"judge: on, Whisper tiny.en from {status.judge.folder} (its files checked against their SHA-256 sums)", []
    instead = 'set [recognition] wake_signals = "fused"' if signals == JUDGE else "set [recognition] judge = false"
    if recognition.judge or signals == JUDGE:
        asked = "[recognition] wake_signals = judge" if signals == JUDGE else "[recognition] judge = true"
        return f"judge: {asked}, but {status.problem}; 'run' refuses to start", [f"{install_fix(status)}, or {instead}"]
    if status.damaged:
        return f"judge: damaged ({status.problem}); the skill listens without it", [f"{install_fix(status)}, or {instead}"]
    return f"judge: unavailable ({status.problem}); the skill listens without it", []


def check_vosk(recognition, model: Path | None) -> tuple[str, list[str]]:
    """Vosk as 'run' builds it (choose.build_recognizer: the trigger phrases, the model
    loaded, their words in its vocabulary): (line, fixes). Whatever 'run' would refuse to
    start with is the fix, in the line 'run' gives."""
    refused = refused_by_run(recognition)
    if refused is not None:
        return f"engine: Vosk, model {model or 'missing'}: 'run' refuses to start with it", [refused]
    return f"engine: Vosk, model {model} (loaded, with the trigger phrases, as 'run' loads it)", []


def refused_by_run(recognition) -> str | None:
    """The line 'run' would refuse to start with (a triggers file it cannot read, a Vosk model
    that does not load, a word the model or dictionary lacks, a judge asked for and missing),
    building the recognizer as 'run' does (choose.build_recognizer); None when it starts."""
    from voice_skill.recognizers.choose import build_recognizer, trigger_table

    try:
        build_recognizer(recognition, trigger_table(recognition), report=lambda line: None)
    except UserError as exc:
        return str(exc)
    return None


def describe_setup(settings: Settings, voice, voice_file: Path, speech_engine=None) -> Report:
    """What the skill would use, and what to fix about it."""
    from voice_skill.recognizers.choose import uses_vosk

    report = Report()
    lines = report.lines
    vosk, model = uses_vosk(settings.recognition)
    if vosk:
        line, fixes = check_vosk(settings.recognition, model)
        lines += [line, "judge: not used by Vosk"]
        report.fixes += fixes
    else:
        try:
            from voice_skill.recognizers.neural import NeuralUnavailable, load_detector

            load_detector()
            signals = settings.recognition.wake_signals
        except NeuralUnavailable as exc:
            signals = f"phonetic only ({exc})"
        lines.append(f"engine: PocketSphinx (bundled English model), wake signals {signals}; Vosk model: {model or 'none (optional)'}")
        line, fixes = describe_judge(settings.recognition)
        refused = None if fixes else refused_by_run(settings.recognition)  # the judge's own fix says it
        if refused is not None:
            lines[-1] = "engine: PocketSphinx (bundled English model): 'run' refuses to start with these settings"
            fixes = [refused]
        lines.append(line)
        report.fixes += fixes
    if speech_engine is not None and not isinstance(speech_engine, str) and speech_engine.name == "piper":
        lines.append(f"voice: Piper, {speech_engine.piper_voice}, rate {voice.rate} words per minute, volume {voice.volume:g}")
    else:
        lines.append(f"voice: pyttsx3, {voice.voice or 'espeak-ng default'}, rate {voice.rate} words per minute, volume {voice.volume:g}")
    lines.append(f"config: {settings.source}" if settings.source != "defaults" else f"config: the defaults (no file at {config_dir() / 'config.toml'})")
    paths = {name: voice_file if name == VOICE_FILE else state_dir() / name for name in STATE_FILES}
    lines.append("state: " + ", ".join(f"{paths[name]} ({what})" for name, what in STATE_FILES.items()))
    return report


def run_check(settings: Settings, voice, voice_file: Path, seconds: float, engine, out=sys.stdout) -> int:
    setup = describe_setup(settings, voice, voice_file, engine)
    fixes = list(setup.fixes)
    for line in setup.lines:
        print(line, file=out)
    summary, more = check_microphone(settings, seconds, out)
    print(summary, file=out)
    fixes += more
    lines, more = check_speaker(settings, voice, engine)
    for line in lines:
        print(line, file=out)
    fixes += more
    if fixes:
        print("to fix:", file=out)
        for fix in fixes:
            print(f"  - {fix}", file=out)
        return 1
    print("all good: 'voice-skill run' (or the service) is ready to listen", file=out)
    return 0
