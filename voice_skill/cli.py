"""Command line: voice-skill run | say | devices | model | phrases | voice | service.

Known problems (bad files, devices, models, configs) become one line on stderr and exit
status 2; nothing else is printed for them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

from voice_skill import __version__
from voice_skill.errors import UserError
from voice_skill.settings import PHRASE_BAG_FILE, RITUAL_FILE, VOICE_FILE, Settings, config_dir, load_settings, state_dir

log = logging.getLogger("voice_skill")

EXIT_BAD_INPUT = 2


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="settings file (default: ~/.config/voice-skill/config.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (shows what was heard: private)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")


def _add_voice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-device", help="speaker: name (or part of it) or index, see 'voice-skill devices'")
    parser.add_argument("--no-speak", action="store_true", help="print answers instead of speaking them")
    parser.add_argument("--rate", type=int, help="speaking rate in words per minute (80-300)")
    parser.add_argument("--volume", type=float, help="speaking volume, 0.0-1.0")
    parser.add_argument("--voice", help="espeak-ng voice, for example gmw/en-us (pyttsx3 only)")
    parser.add_argument(
        "--speech-engine", choices=["pyttsx3", "piper"],
        help="pyttsx3 (espeak-ng, the default) or piper (the natural voice: scripts/install --natural-voice)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voice-skill", description="An offline bedside voice skill: ask it for a question or a tip.")
    parser.add_argument("--version", action="version", version=f"voice-skill {__version__}")
    commands = parser.add_subparsers(dest="command")

    run = commands.add_parser("run", help="listen for the wake phrases and answer")
    _add_common(run)
    _add_voice(run)
    run.add_argument("--input", type=Path, help="read audio from this WAV file instead of the microphone, then exit")
    run.add_argument("--input-device", help="microphone: name (or part of it) or index")
    run.add_argument("--input-rate", type=int, help="capture rate in Hz (default: 16000 if the microphone offers it, else its own)")
    run.add_argument("--echo-cancellation", dest="echo_cancellation", action="store_true", default=None,
                     help="cancel its own voice at the microphone and act on 'stop' while it speaks (experimental; [audio] echo_cancellation)")
    run.add_argument("--engine", choices=["auto", "vosk", "pocketsphinx"], help="speech recognizer (default: auto)")
    run.add_argument(
        "--wake-signals", choices=["fused", "phonetic", "neural", "judge"],
        help="PocketSphinx wake engine: fuse the signals (default), or use one alone (for comparison)",
    )
    judge = run.add_mutually_exclusive_group()
    judge.add_argument("--judge", dest="judge", action="store_true", default=None,
                       help="wake engine v3: the judge (Whisper tiny.en) looks again at each wake candidate (fewer false wakes, more missed phrases in noise); refuse to start without it ([recognition] judge)")
    judge.add_argument("--no-judge", dest="judge", action="store_false", default=None,
                       help="listen without the judge (the default)")
    run.add_argument("--model", help="Vosk model folder")
    run.add_argument("--triggers", type=Path, help="trigger phrases file (default: phrases/triggers.toml)")
    run.add_argument("--json", action="store_true", help="one JSON object per line for each event")

    say = commands.add_parser("say", help="speak one question or tip now")
    _add_common(say)
    _add_voice(say)
    say.add_argument("kind", nargs="?", default="question", choices=["question", "tip"], help="what to say (default: question)")
    say.add_argument("--json", action="store_true", help="print the answer as a JSON 'say' event (as 'run --json' does)")

    check = commands.add_parser("check", help="set-up helper: the microphone's level, the speaker, and what the skill will use")
    _add_common(check)
    _add_voice(check)
    check.add_argument("--input-device", help="microphone: name (or part of it) or index")
    check.add_argument("--input-rate", type=int, help="capture rate in Hz")
    check.add_argument("--seconds", type=float, default=5.0, help="how long to show the microphone's level (default 5)")

    devices = commands.add_parser("devices", help="list microphones and speakers")
    _add_common(devices)

    model = commands.add_parser("model", help="manage Vosk models")
    model_commands = model.add_subparsers(dest="model_command", required=True)
    download = model_commands.add_parser("download", help="download a Vosk model into the models folder")
    _add_common(download)
    download.add_argument("name", nargs="?", default=None, help="model name (default: vosk-model-small-en-us-0.15)")
    download.add_argument("--dir", type=Path, help="where to put it (default: the user models folder)")
    download.add_argument("--list-url", help="the model list to use (default: Vosk's own, on alphacephei.com; a mirror's model-list.json works too)")

    phrases = commands.add_parser("phrases", help="list or check the phrase packs")
    phrase_commands = phrases.add_subparsers(dest="phrases_command", required=True)
    listing = phrase_commands.add_parser("list", help="every enabled phrase with its id, kind, category and level")
    _add_common(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per phrase")
    listing.add_argument("--favorites", action="store_true", help="only the favourites ('I like that one')")
    check = phrase_commands.add_parser("check", help="validate phrase packs (default: all packs in use)")
    _add_common(check)
    check.add_argument("paths", nargs="*", type=Path, help="pack files or folders")

    voice = commands.add_parser("voice", help="the voice changed by voice ('speak softer')")
    voice_commands = voice.add_subparsers(dest="voice_command", required=True)
    reset = voice_commands.add_parser("reset", help="forget the saved rate and volume: the config file's (or the defaults) apply again")
    _add_common(reset)

    service = commands.add_parser("service", help="run the skill as a systemd user service (Raspberry Pi)")
    service_commands = service.add_subparsers(dest="service_command", required=True)
    install = service_commands.add_parser("install", help="write ~/.config/systemd/user/voice-skill.service")
    _add_common(install)
    install.add_argument("--user", action="store_true", help="a per-user service (the only kind supported)")
    show = service_commands.add_parser("show", help="print the unit that 'service install --user' writes")
    _add_common(show)
    _name_the_choices(parser)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    audio = settings.audio
    rate = getattr(args, "input_rate", None)
    if rate is not None and not 8000 <= rate <= 192000:
        raise UserError(f"--input-rate {rate}: use a sample rate in Hz from 8000 to 192000, such as 16000 or 48000")
    for name in ("input_device", "output_device", "input_rate", "echo_cancellation"):
        value = getattr(args, name, None)
        if value is not None:
            audio = replace(audio, **{name: value})
    recognition = settings.recognition
    for name in ("engine", "model", "wake_signals", "judge"):
        value = getattr(args, name, None)
        if value is not None:
            recognition = replace(recognition, **{name: value})
    if getattr(args, "triggers", None) is not None:
        recognition = replace(recognition, triggers=str(args.triggers))
    speech = settings.speech
    if getattr(args, "rate", None) is not None:
        if not 80 <= args.rate <= 300:
            raise UserError(f"--rate {args.rate}: use 80 to 300 words per minute")
        speech = replace(speech, rate=args.rate)
    if getattr(args, "volume", None) is not None:
        if not 0.0 <= args.volume <= 1.0:
            raise UserError(f"--volume {args.volume}: use a number from 0.0 to 1.0")
        speech = replace(speech, volume=args.volume)
    if getattr(args, "voice", None):
        speech = replace(speech, voice=args.voice)
    if getattr(args, "speech_engine", None):
        speech = replace(speech, engine=args.speech_engine)
    return replace(settings, audio=audio, recognition=recognition, speech=speech)


def _phrase_dirs(settings: Settings) -> list[Path]:
    from voice_skill.phrases import bundled_phrases_dir

    dirs = [bundled_phrases_dir(), config_dir() / "phrases"]
    if settings.content.phrases_dir:
        extra = Path(settings.content.phrases_dir).expanduser()
        if not extra.is_dir():
            raise UserError(f"[content] phrases_dir {extra}: no such folder; create it or remove the setting")
        dirs.append(extra)
    return dirs


def _content_filter(settings: Settings):
    from voice_skill.phrases import ContentFilter

    content = settings.content
    return ContentFilter(
        categories=frozenset(content.categories) if content.categories else None,
        levels=frozenset(content.levels),
        include=frozenset(name for name, on in (("sexual", content.sexual), ("moments", content.timed_moments)) if on),
    )


def _library(settings: Settings):
    """The phrase library; a [content] category no pack has is reported (a typo drops it)."""
    from voice_skill.phrases import load_library

    library = load_library(_phrase_dirs(settings))
    wanted = settings.content.categories
    if wanted:
        known = sorted({p.category for p in library})
        unknown = [c for c in wanted if c not in known]
        if unknown:
            listing = ", ".join(known)
            if len(unknown) == len(wanted):
                raise UserError(f"[content] categories in {settings.source}: none of {', '.join(unknown)} is a category; the categories are {listing}")
            log.warning("[content] categories in %s: %s is not a category and is left out; the categories are %s", settings.source, ", ".join(unknown), listing)
    return library


def _memory():
    from voice_skill.memory import Memory

    return Memory(state_dir() / RITUAL_FILE)


def _picker(settings: Settings, memory):
    from voice_skill.phrases import PhraseBag
    from voice_skill.picker import Picker

    bag = PhraseBag(_library(settings), state_dir() / PHRASE_BAG_FILE)
    allowed = _content_filter(settings)
    for kind in ("question", "tip"):
        if not bag.enabled(kind, allowed):
            raise UserError(f"no {kind}s are enabled: check [content] levels and categories in {settings.source}")
    return Picker(bag, memory, allowed)


def _night_voice(settings: Settings):
    from voice_skill.night import NightVoice, parse_time_of_day

    speech = settings.speech
    return NightVoice(speech.night_volume, parse_time_of_day(speech.night_from), parse_time_of_day(settings.skill.morning))


def _quiet_rules(settings: Settings):
    from voice_skill.night import QuietRules, parse_time_of_day

    skill = settings.skill
    return QuietRules(
        morning=parse_time_of_day(skill.morning),
        quiet_hours=skill.quiet_hours,
        quiet_from=parse_time_of_day(skill.quiet_from) if skill.quiet_from else None,
    )


def _voice(settings: Settings, args: argparse.Namespace):
    """The configured voice, with what the couple changed by voice on top (unless flags say otherwise)."""
    from voice_skill.speech import Voice, VoiceStore

    store = VoiceStore(state_dir() / VOICE_FILE)
    voice = Voice(settings.speech.rate, settings.speech.volume, settings.speech.voice)
    if getattr(args, "rate", None) is None and getattr(args, "volume", None) is None:
        voice = store.load(voice)
    return voice, store


def _speech_engine(settings: Settings):
    """The configured speech engine; for Piper, its voice file checked (a problem is exit 2)."""
    from voice_skill.piper_voice import INSTALL_HINT, PiperProblem, piper_installed, voice_file
    from voice_skill.speech import SpeechEngine

    speech = settings.speech
    if speech.engine != "piper":
        return SpeechEngine()
    if not piper_installed():
        raise UserError(f"speech engine piper (--speech-engine or [speech] engine): Piper (piper-tts) is not installed; install it with {INSTALL_HINT}, or use pyttsx3")
    try:
        return SpeechEngine("piper", voice_file(speech.piper_voice))
    except PiperProblem as exc:
        raise UserError(f"[speech] piper_voice {exc}" if speech.piper_voice else f"speech engine piper: {exc}") from None


def _synthesizer(voice, engine):
    """The speech worker, started, with the configured voice checked (an unknown espeak-ng voice
    or a Piper voice that does not load is exit 2)."""
    from voice_skill.speech import EngineUnavailable, SpeechError, Synthesizer, UnknownVoice

    if voice.voice and engine.name == "piper":
        log.warning("voice %r (--voice or [speech] voice) is an espeak-ng voice: Piper speaks with %s", voice.voice, engine.piper_voice)
    synthesizer = Synthesizer(voice, engine=engine)
    try:
        synthesizer.start()
        if voice.voice and engine.name == "pyttsx3":
            synthesizer.check_voice(voice.voice)
    except UnknownVoice:
        synthesizer.close()
        raise UserError(
            f"voice {voice.voice!r} (--voice or [speech] voice): espeak-ng has no such voice; "
            "'espeak-ng --voices=en' lists them (use the File column, e.g. gmw/en-us)"
        ) from None
    except EngineUnavailable as exc:
        if engine.name != "piper":
            log.error("speech synthesis is unavailable (%s); answers will be a chime only. Install espeak-ng.", exc)
            return synthesizer
        synthesizer.close()
        detail = str(exc).removeprefix("speech engine unavailable: ")[:200]
        if exc.problem == "voice":
            raise UserError(
                f"[speech] piper_voice {engine.piper_voice}: Piper cannot load this voice ({detail}); "
                "use a Piper .onnx voice with the .onnx.json it came with, or set [speech] engine = \"pyttsx3\""
            ) from None
        raise UserError(f"speech engine piper: Piper does not start ({detail}); reinstall it with scripts/install --natural-voice, or use --speech-engine pyttsx3") from None
    except SpeechError as exc:
        if engine.name == "piper":
            synthesizer.close()
            raise UserError(f"speech engine piper: {exc}; use --speech-engine pyttsx3 until it is fixed") from None
        log.error("speech synthesis is unavailable (%s); answers will be a chime only. Install espeak-ng.", exc)
    return synthesizer


def _fallback(voice, engine):
    """pyttsx3, started when first needed, for answers Piper fails to render; None for pyttsx3 itself."""
    from voice_skill.speech import Synthesizer

    return Synthesizer(replace(voice, voice=None)) if engine.name == "piper" else None


def _answers(settings: Settings, synthesizer, reference=None):
    """The speaker and synthesizer, or None with --no-speak (no synthesizer). `reference`: told
    what the speaker plays (echo cancellation)."""
    if synthesizer is None:
        return None
    from voice_skill.audio import Speaker, resolve_device
    from voice_skill.runner import SpokenAnswers

    try:
        speaker = Speaker(resolve_device(settings.audio.output_device, "output"), reference)
    except BaseException:
        synthesizer.close()  # no worker is left behind by a bad speaker
        raise
    return SpokenAnswers(synthesizer, speaker, _fallback(synthesizer.voice, synthesizer.engine))


def _echo_canceller(settings: Settings, live: bool):
    """The echo canceller when [audio] echo_cancellation asks for it and the skill speaks from a
    live microphone (a file has no speaker reference: nothing changes)."""
    if not settings.audio.echo_cancellation or not live:
        return None
    from voice_skill.echo import EchoCanceller, PlaybackReference

    print("voice-skill: echo cancellation on (experimental): 'stop', 'another one', 'repeat that' and voice changes are heard while it speaks", file=sys.stderr)
    return EchoCanceller(PlaybackReference())


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    from voice_skill.audio import LiveMicrophone, WavSource
    from voice_skill.intents import IntentMatcher
    from voice_skill.recognizers.choose import build_recognizer, trigger_table
    from voice_skill.runner import EventWriter, Runner
    from voice_skill.night import StreamClock
    from voice_skill.skill import Skill, SkillTiming
    from voice_skill.stopping import stop_on_signals

    settings = _settings(args)
    table = trigger_table(settings.recognition)
    memory = _memory()
    pick = _picker(settings, memory)
    if args.input is not None:
        source = WavSource(args.input)
    else:
        # A lost microphone is announced with a low tone (by the runner, made below).
        source = LiveMicrophone(settings.audio.input_device, settings.audio.input_rate, on_lost=lambda reason: runner.microphone_lost(reason))
    voice, store = _voice(settings, args)
    # An unknown voice or a bad voice file fails before the models load.
    synthesizer = _synthesizer(voice, _speech_engine(settings)) if not args.no_speak else None
    try:
        # The line naming the engine is information (-q leaves it out); what it listens without is a warning.
        announce = (lambda line: None) if args.quiet else _to_stderr
        recognizer = build_recognizer(settings.recognition, table, report=_to_stderr, announce=announce)
    except BaseException:
        if synthesizer is not None:
            synthesizer.close()
        raise
    echo = _echo_canceller(settings, live=args.input is None and synthesizer is not None)
    answers = _answers(settings, synthesizer, echo.reference if echo is not None else None)
    # The stream's second 0 is now: a file is heard as if it were being said from now on.
    skill = Skill(
        pick, SkillTiming(follow_up_window=settings.skill.follow_up_window), StreamClock.from_now(), _quiet_rules(settings),
        names=settings.couple.names, next_turn=memory.next_turn, peek=pick.peek, barge_in=echo is not None,
    )
    runner = Runner(
        source, recognizer, IntentMatcher(table), skill, EventWriter(sys.stdout, args.json), answers,
        realtime=args.input is None, voice=voice, voice_store=store, ready=settings.skill.ready_sound, memory=memory,
        night_voice=_night_voice(settings), echo=echo,
    )

    def stop() -> None:
        runner.stop()
        source.close()

    stop_on_signals(stop)
    try:
        runner.run()
    finally:
        if answers is not None:
            answers.close()
    return 0


def cmd_say(args: argparse.Namespace) -> int:
    import time
    from datetime import date, datetime

    from voice_skill.events import Spoken, say_event
    from voice_skill.picker import Wanted
    from voice_skill.runner import EventWriter
    from voice_skill.skill import Say, take_turn

    settings = _settings(args)
    memory = _memory()
    pick = _picker(settings, memory)
    synthesizer = None if args.no_speak else _synthesizer(_voice(settings, args)[0], _speech_engine(settings))
    answers = _answers(settings, synthesizer)  # a bad speaker fails before a phrase is used
    phrase = pick(Wanted(args.kind, None, date.today(), timed=False))  # nothing here would keep a timed moment's time
    # A question is addressed to [couple] names in turn, as in 'run' (the turn is shared with it).
    to, after = take_turn(settings.couple.names, memory.next_turn) if phrase.kind == "question" else (None, None)
    say = Say(args.kind, phrase, to)
    spoken = None
    if answers is not None:
        try:
            voice = answers.synthesizer.voice
            if args.volume is None:  # softer at night, unless a volume was asked for
                voice = replace(voice, volume=_night_voice(settings).volume_at(datetime.now().astimezone(), voice.volume))
            started = time.perf_counter()
            sound, ahead = answers.answer(say.text, voice)
            playback = answers.speaker.play(sound)
            first_audio_ms = playback.first_audio_ms(started)
            playback.wait()
        finally:
            answers.close()
        if playback.error is not None:
            raise UserError(f"the speaker failed ({playback.error}); check --output-device (see 'voice-skill devices')")
        spoken = Spoken(sound.duration, first_audio_ms, voice.volume, ahead)
    if after is not None:
        memory.set_next_turn(after)
    if args.json:
        # The same event as 'run --json' (events.say_event); at: 0.0, the moment it was asked for.
        EventWriter(sys.stdout, as_json=True)("say", **say_event(say, 0.0, spoken))
    else:
        print(say.text)  # what was said, the name first if it was addressed to one
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from voice_skill.setup_check import run_check

    if not 0.5 <= args.seconds <= 60:
        raise UserError(f"--seconds {args.seconds:g}: use 0.5 to 60")
    settings = _settings(args)
    voice, _ = _voice(settings, args)
    try:
        engine = _speech_engine(settings)
    except UserError as exc:  # the helper lists it among what to fix
        engine = str(exc)
    return run_check(settings, voice, state_dir() / VOICE_FILE, args.seconds, engine)


def cmd_devices(args: argparse.Namespace) -> int:
    from voice_skill.audio import default_devices, list_devices

    devices = list_devices()
    if not devices:
        print("no audio devices found (is a USB microphone or speaker plugged in?)")
        return 0
    default_in, default_out = default_devices()
    print("index  device  (channels in/out, default rate)   * = the default microphone (in) or speaker (out)")
    for d in devices:
        roles = []
        if d["max_input_channels"] > 0:
            roles.append(f"in:{d['max_input_channels']}" + ("*" if d["index"] == default_in else ""))
        if d["max_output_channels"] > 0:
            roles.append(f"out:{d['max_output_channels']}" + ("*" if d["index"] == default_out else ""))
        print(f"{d['index']:5d}  {d['name']}  ({', '.join(roles)}, {int(d['default_samplerate'])} Hz)")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from voice_skill.models import DEFAULT_MODEL, MODEL_LIST_URL, download_model, user_models_dir

    target = args.dir or user_models_dir()
    path = download_model(args.name or DEFAULT_MODEL, target, args.list_url or MODEL_LIST_URL)
    print(f"model ready: {path}")
    return 0


def cmd_phrases(args: argparse.Namespace) -> int:
    from voice_skill.phrases import check_packs

    settings = _settings(args)
    if args.phrases_command == "check":
        dirs = args.paths or _phrase_dirs(settings)
        for path in args.paths:
            if not path.exists():
                raise UserError(f"{path}: no such file or folder")
        phrases, problems = check_packs(dirs)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return EXIT_BAD_INPUT
        print(f"ok: {len(phrases)} phrases")
        return 0
    allowed = _content_filter(settings)
    enabled = [p for p in _library(settings) if allowed.allows(p)]
    if args.favorites:
        favorites = _memory().favorites
        enabled = sorted((p for p in enabled if p.id in favorites), key=lambda p: favorites.index(p.id))
        if not enabled:
            print("no favourites yet: say 'I like that one' right after an answer to keep it as one", file=sys.stderr)
    for p in enabled:
        if args.json:
            print(json.dumps(asdict(p), ensure_ascii=False))  # every field; seconds is null but for a timed moment
        else:
            print(f"{p.id:18s} {p.kind:8s} {p.category:10s} {p.level:6s} {p.text}")
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    from voice_skill.service import install_user_unit, installed_command, unit_text

    run_args = ["--config", str(args.config.resolve())] if args.config is not None else []
    if args.config is not None:
        load_settings(args.config)  # a bad file fails now, not at every service start
    if args.service_command == "show":
        print(unit_text(installed_command(), run_args), end="")
        return 0
    if not args.user:
        raise UserError("only a per-user service is supported: run 'voice-skill service install --user'")
    install_user_unit(installed_command(), run_args)
    return 0


def cmd_voice(args: argparse.Namespace) -> int:
    from voice_skill.speech import VoiceStore

    settings = _settings(args)
    store = VoiceStore(state_dir() / VOICE_FILE)
    forgotten = store.forget()
    what = "forgot the saved voice" if forgotten else "no saved voice"
    print(f"{what}: rate {settings.speech.rate} words per minute, volume {settings.speech.volume:g} from now on ({settings.source})")
    return 0


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of a command ('run'), for its own usage line."""
    return _subcommands(parser).choices[name]


def _name_the_choices(parser: argparse.ArgumentParser) -> None:
    """A missing subcommand is named by its choices ("{list,check}"), not by its internal
    name ("phrases_command")."""
    action = _subcommands(parser)
    if action is None:
        return
    action.metavar = "{" + ",".join(action.choices) + "}"
    for sub in action.choices.values():
        _name_the_choices(sub)


COMMANDS = {"voice": cmd_voice, "run": cmd_run, "say": cmd_say, "check": cmd_check, "devices": cmd_devices, "model": cmd_model, "phrases": cmd_phrases, "service": cmd_service}


def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING if getattr(args, "quiet", False) else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("voice-skill: %(message)s"))
    root = logging.getLogger("voice_skill")
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # Unknown options are named by the command they were given to ("run --bogus": run's
    # usage), and before a missing command ("voice-skill --bogus" names --bogus).
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        chosen = parser
        if args.command:
            chosen = _subparser(parser, args.command)
            nested = getattr(args, f"{args.command}_command", None)  # "phrases list --bogus": list's usage
            chosen = _subparser(chosen, nested) if nested else chosen
        chosen.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.error("choose a command: run, say, check, devices, model, phrases, voice or service (voice-skill COMMAND --help)")
    _setup_logging(args)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()
        return code
    except UserError as exc:
        print(f"voice-skill: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away ("voice-skill phrases list | head -2"): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
