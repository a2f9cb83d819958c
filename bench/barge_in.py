"""Barge-in over the skill's own voice (issue 13): echo cancellers compared, and the live skill
in the virtual room. Prints counts; nothing is kept on disk but generated speech in a temp folder.

    python3 -m bench.barge_in offline                 # candidates x echo paths x flite voices x levels
    python3 -m bench.barge_in room --tries 10         # the real program, both engines, 3 voices
    python3 -m bench.barge_in room --tries 10 --judge --ask-voice rms  # the same with wake engine v3
    python3 -m bench.barge_in cost                    # the skill's canceller: CPU s per audio s, RSS

offline: the answer (rendered by the real engine) is the echo, "stop" (flite) is said 2 s into it
at the same active-speech level or 6 dB below; the microphone signal goes through each
canceller, then through the wake engine (cancellers: none; no-echo, the phrase over room tone
alone, which is the wake engine's own ceiling; the skill's own, cold and warmed by an earlier
answer through the same path; WebRTC AEC3 (livekit, if installed), cold and warm; speexdsp).
Everything is over
room tone (--room-tone, -65 dBFS): a microphone never records digital silence, and without it
the front end takes any residual echo for speech. Echo paths: the room's digital loopback (40 ms late)
and a harder one (sox: band-limited 150-6000 Hz, reverb 50 %, -3 dB) standing in for
speaker -> air -> microphone (no loudspeaker non-linearity). ERLE: echo reduction over the
second before "stop" and 0.1-3 s after it.

room: `voice-skill run --echo-cancellation` in tests/room.py's virtual room; per try a tip is
asked for, "stop" is played 1-3 s into the answer (scaled to the answer's level, or 6 dB below),
and it counts as heard when a "stop" wake event comes while speaking and the answer's sound
ends within 0.5 s of the end of "stop" (from the room recording). Then `--self-trigger N`
answers containing trigger words, counting any command that acts while they play.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import logging
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from audio_factory import flite, rms, sequence, write_wav  # noqa: E402

RATE = 16000
LONG_TIP = "Close your eyes and take three slow breaths together, then tell each other about the best part of the day and the hardest part of the day, and listen without interrupting."
SELF_TRIGGER = [
    "Stop for a moment and ask us a question about your day, then give us a tip you learned.",
    "That's enough screens for tonight. Another one of your stories can wait; repeat that you love each other.",
    "Speak softer than usual, speak slower, and when one of you says stop, stop and listen.",
    "Say another one of the things you admire, then say that again in your own words, and give us a tip.",
    "Ask me a question with your eyes closed, and when it is enough, say that's enough and hold hands.",
]
VOICES = ("kal16", "slt", "rms", "awb")


def i16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def render(text: str, engine: str) -> np.ndarray:
    """The answer as the skill renders it (volume 0.6), 16 kHz float."""
    import soxr

    from voice_skill.piper_voice import default_voice
    from voice_skill.speech import SpeechEngine, Synthesizer, Voice

    with Synthesizer(engine=SpeechEngine("piper", default_voice()) if engine == "piper" else SpeechEngine()) as synth:
        sound = synth.render(text, Voice(volume=0.6))
    return soxr.resample(sound.samples.astype(np.float32) / 32768, sound.rate, RATE).astype(np.float32)


def active_rms(x: np.ndarray) -> float:
    return rms(x[np.abs(x) > 1e-3])


# ---------------------------------------------------------------- offline candidates


class NoCanceller:
    name = "none"

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        return near


class SkillCanceller:
    """The skill's own EchoCanceller (voice_skill/echo.py), fed with capture times as the runner
    feeds it: it finds the delay in the first half second (deaf meanwhile), starts from it, and
    adapts its linear filter from there."""

    name = "skill"

    def __init__(self, warm: tuple[np.ndarray, np.ndarray] | None = None):
        from voice_skill.echo import EchoCanceller, PlaybackReference

        self.reference = PlaybackReference()
        self.echo = EchoCanceller(self.reference)
        self.clock = time.monotonic() + 1000.0  # stamps ahead of now: the reference keeps them
        if warm is not None:  # (microphone, reference) of an earlier answer through the same echo path, as in a session
            self.process(*warm)
            self.name = "skill (warm)"

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        start = self.clock
        self.reference.playing(far, RATE, start)
        out = [np.frombuffer(self.echo.process(near[i : i + 1600].tobytes(), start + i / RATE), dtype=np.int16) for i in range(0, len(near), 1600)]
        self.clock += len(near) / RATE + 10.0
        return np.concatenate(out)


class Aec3:
    """WebRTC AEC3 (livekit's AudioProcessingModule, if installed: pip install livekit), fed
    frame by frame with the reference as played; its own delay estimator finds the echo."""

    name = "webrtc-aec3"

    def __init__(self, warm: tuple[np.ndarray, np.ndarray] | None = None):
        from livekit import rtc

        self.rtc = rtc
        self.apm = rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=False, high_pass_filter=False, auto_gain_control=False)
        if warm is not None:  # (AEC3's first 2.5 s are cautious)
            self.process(*warm)
            self.name = "webrtc-aec3 (warm)"

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        out = near.copy()
        frame = RATE // 100
        for i in range(0, len(near) - frame + 1, frame):
            self.apm.process_reverse_stream(self.rtc.AudioFrame(far[i : i + frame].tobytes(), RATE, 1, frame))
            mic = self.rtc.AudioFrame(near[i : i + frame].tobytes(), RATE, 1, frame)
            self.apm.set_stream_delay_ms(0)
            self.apm.process_stream(mic)
            out[i : i + frame] = np.frombuffer(bytes(mic.data), dtype=np.int16)
        return out


class Speex:
    """speexdsp's echo canceller (MDF, 256 ms tail) through ctypes on Debian's libspeexdsp1."""

    name = "speexdsp"

    def __init__(self, tail: int = 4096):
        path = ctypes.util.find_library("speexdsp")
        if path is None:
            raise OSError("libspeexdsp is not installed (apt-get install libspeexdsp1)")
        lib = self.lib = ctypes.CDLL(path)
        vp = ctypes.c_void_p
        lib.speex_echo_state_init.restype = vp
        lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.speex_echo_ctl.argtypes = [vp, ctypes.c_int, vp]
        lib.speex_echo_cancellation.argtypes = [vp, vp, vp, vp]
        self.state = vp(lib.speex_echo_state_init(160, tail))
        rate = ctypes.c_int(RATE)
        lib.speex_echo_ctl(self.state, 24, ctypes.byref(rate))  # SPEEX_ECHO_SET_SAMPLING_RATE

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        out = np.zeros_like(near)
        frame = np.zeros(160, np.int16)
        for i in range(0, len(near) - 159, 160):
            n, f = np.ascontiguousarray(near[i : i + 160]), np.ascontiguousarray(far[i : i + 160])
            self.lib.speex_echo_cancellation(self.state, n.ctypes.data, f.ctypes.data, frame.ctypes.data)
            out[i : i + 160] = frame
        return out


def harder_path(x: np.ndarray) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        write_wav(Path(folder) / "in.wav", x)
        subprocess.run(["sox", f"{folder}/in.wav", f"{folder}/out.wav", "highpass", "150", "lowpass", "6000", "reverb", "50", "50", "60", "gain", "-3"], check=True)
        import soundfile

        y, _ = soundfile.read(f"{folder}/out.wav", dtype="float32")
    return y[: len(x)].astype(np.float32)


class WakeEars:
    def __init__(self):
        from voice_skill.intents import load_triggers
        from voice_skill.recognizers.choose import build_wake_engine

        self.table = load_triggers(REPO / "phrases" / "triggers.toml")
        self.engine = build_wake_engine("fused", self.table, report=lambda line: None)

    def commands(self, audio: np.ndarray) -> list[str]:
        self.engine.restart()
        pcm = audio.tobytes()
        heard = []
        for i in range(0, len(pcm), 3200):
            heard += self.engine.feed(pcm[i : i + 3200])
        heard += self.engine.finish()
        return [self.table.intent_of(h.text) for h in heard if self.table.intent_of(h.text)]


def offline(args) -> None:
    cache = Path(tempfile.mkdtemp(prefix="barge-in-"))
    ears = WakeEars()
    delay = int(0.04 * RATE)
    tone = lambda n: (np.random.default_rng(1).standard_normal(n) * 10 ** (args.room_tone / 20)).astype(np.float32)  # noqa: E731

    def through(path, far: np.ndarray) -> np.ndarray:
        """The microphone's echo of `far`: the echo path, 40 ms late, over room tone."""
        echo = far if path is None else path(far)
        return np.concatenate([np.zeros(delay, np.float32), echo])[: len(far)] + tone(len(far))

    for engine in args.engines:
        answer = render(LONG_TIP, engine)
        earlier = np.concatenate([np.zeros(RATE // 2, np.float32), render(SELF_TRIGGER[0], engine), np.zeros(RATE, np.float32)])
        level = active_rms(answer)
        far = np.concatenate([np.zeros(RATE // 2, np.float32), answer, np.zeros(RATE, np.float32)])
        for path_name, path in (("loopback", None), ("reverb", harder_path)):
            warm = (i16(through(path, earlier)), i16(earlier))
            makers = {
                "none": NoCanceller,
                "no-echo": NoCanceller,
                "skill": SkillCanceller,
                "skill-warm": lambda: SkillCanceller(warm),  # noqa: B023
                "aec3": Aec3,
                "aec3-warm": lambda: Aec3(warm),  # noqa: B023
                "speexdsp": Speex,
            }
            echo = through(path, far)
            for name in args.cancellers:
                try:
                    makers[name]()
                except ImportError as exc:
                    print(f"offline {engine:7s} {path_name:8s} {name:12s} not measured: {exc}", flush=True)
                    continue
                counts = {0: 0, -6: 0}
                erle = []
                for voice in args.voices:
                    said = flite(args.phrase, voice, cache)
                    for gain in (0, -6):
                        canceller = makers[name]()
                        stop = said / (active_rms(said) + 1e-9) * level * 10 ** (gain / 20)
                        at = RATE // 2 + 2 * RATE + delay
                        near = tone(len(far)) if name == "no-echo" else echo.copy()  # no-echo: the phrase over room tone alone, the wake engine's ceiling
                        near[at : at + len(stop)] += stop
                        out = canceller.process(i16(near), i16(far))
                        outf = out.astype(np.float32) / 32768

                        def reduction(a: int, b: int) -> float:
                            return 10 * np.log10(np.mean(near[a:b] ** 2) / (np.mean(outf[a:b] ** 2) + 1e-12))

                        erle.append((reduction(at - RATE, at), reduction(at + len(stop) + 1600, at + len(stop) + 3 * RATE)))
                        heard = ears.commands(out)
                        counts[gain] += args.phrase_intent in heard
                before = np.mean([e[0] for e in erle])
                after = np.mean([e[1] for e in erle])
                n = len(args.voices)
                print(f"offline {engine:7s} {path_name:8s} {name:12s} echo reduction {before:5.1f} dB before / {after:5.1f} dB after '{args.phrase}'; heard {counts[0]}/{n} at the same level, {counts[-6]}/{n} at -6 dB", flush=True)


# ---------------------------------------------------------------- the room


def room(args) -> None:
    from room import SkillProcess, VirtualRoom, room_tools_missing

    missing = room_tools_missing()
    if missing:
        sys.exit(f"bench.barge_in room: {missing}")
    base = Path(tempfile.mkdtemp(prefix="barge-in-room-"))
    cache = base / "speech"
    the_room = VirtualRoom(base / "room")
    the_room.start()
    rng = random.Random(args.seed)
    try:
        for engine in args.engines:
            env = _private_env(the_room, base / engine)
            _packs(Path(env["XDG_CONFIG_HOME"]) / "voice-skill", "long", [LONG_TIP])
            answer = render(LONG_TIP, engine)
            level = active_rms(answer) * 0.6 ** 0  # the answer as rendered at the skill's volume
            for gain in args.gains:
                for voice in args.voices:
                    said = flite("stop", voice, cache)
                    stop = said / (active_rms(said) + 1e-9) * level * 10 ** (gain / 20)
                    stop_wav = write_wav(base / f"stop-{voice}-{gain}.wav", np.concatenate([stop, np.zeros(RATE // 2, np.float32)]))
                    ask = write_wav(base / "ask.wav", sequence([("give us a tip", flite("give us a tip", args.ask_voice, cache))], gap=0.3, lead=0.3)[0] * 0.8)
                    heard = cut_in_time = 0
                    latencies = []
                    judge = ("--judge",) if args.judge else ()
                    skill = SkillProcess.start(the_room, "--input-device", "pulse", "--output-device", "pulse", "--speech-engine", engine, "--echo-cancellation", *judge, "-v", env=env)
                    try:
                        for attempt in range(args.tries):
                            say = ask_for_an_answer(the_room, skill, ask)
                            said_at = say["_wall"]
                            time.sleep(rng.uniform(1.0, 3.0) - 0.2)  # the chime and gap come first (0.42 s); paplay starts ~0.2 s late
                            with the_room.recorder() as recording:
                                played_at = time.monotonic()
                                the_room.play(stop_wav)
                                stop_end = time.monotonic() - 0.5  # its trailing silence
                                time.sleep(2.0)
                            wakes = [e for e in skill.of("wake") if e["intent"] == "stop" and e["_wall"] >= played_at]
                            audio = recording.audio
                            # After the end of "stop" (known from the wall clock), whatever sounds is the answer.
                            end_index = int((stop_end - recording.started) * RATE)
                            loud = np.nonzero(np.abs(audio[max(0, end_index) :]) > 0.01)[0]
                            lasts = (loud[-1] / RATE) if len(loud) else 0.0
                            if wakes:
                                heard += 1
                                latencies.append(lasts)
                                cut_in_time += lasts <= 0.5
                            else:
                                time.sleep(max(0.0, said_at + say["seconds"] - time.monotonic()))  # let the answer end
                            time.sleep(1.5)
                    finally:
                        skill.stop()
                    if args.log:
                        with open(args.log, "a") as log_file:
                            log_file.write(f"# {engine} {voice} {gain:+d} dB\n" + "\n".join(skill.stderr_lines) + "\n")
                    delays = [line.split("comes ")[1].split(" ms")[0] for line in skill.stderr_lines if "echo comes" in line]
                    reductions = [line.split("; ")[1].split(" dB")[0] for line in skill.stderr_lines if "dB less at the microphone" in line]
                    print(f"room {engine:7s} {voice:5s} {gain:+d} dB: 'stop' heard while speaking {heard}/{args.tries}, answer cut within 0.5 s {cut_in_time}/{args.tries}; "
                          f"sound after 'stop' {[round(x, 2) for x in latencies]} s; echo delay after the reference as fed (ms): {delays[:6]}; "
                          f"dB less at the microphone per playback (ready sound, answers with 'stop' over them): {reductions[:8]}", flush=True)
            if args.self_trigger:
                self_trigger(the_room, engine, base, args.self_trigger, echo=not args.without_echo_cancellation)
    finally:
        the_room.stop()


def self_trigger(the_room, engine: str, base: Path, answers: int, echo: bool = True) -> None:
    from room import SkillProcess

    env = _private_env(the_room, base / f"self-{engine}")
    _packs(Path(env["XDG_CONFIG_HOME"]) / "voice-skill", "echo", SELF_TRIGGER)
    ask = write_wav(base / "ask-self.wav", sequence([("give us a tip", flite("give us a tip", "kal16", base / "speech"))], gap=0.3, lead=0.3)[0] * 0.8)
    flags = ["--echo-cancellation"] if echo else []
    skill = SkillProcess.start(the_room, "--input-device", "pulse", "--output-device", "pulse", "--speech-engine", engine, *flags, "-v", env=env)
    try:
        for n in range(answers):
            say = ask_for_an_answer(the_room, skill, ask)
            time.sleep(say["seconds"] + 1.0)
        time.sleep(2)
        acted = [e for e in skill.of("wake") if e.get("while_speaking")]
        ignored = [e for e in skill.of("ignored") if e.get("reason") == "speaking"]
        status = Path(f"/proc/{skill.process.pid}/status").read_text()
        peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
    finally:
        skill.stop()
    reductions = [line.split("; ")[1].split(" dB")[0] for line in skill.stderr_lines if "dB less at the microphone" in line]
    delays = [line.split("comes ")[1].split(" ms")[0] for line in skill.stderr_lines if "echo comes" in line]
    if echo:
        print(f"echo cancellation over the {answers} answers (nothing said over them): dB less at the microphone per playback {reductions}; "
              f"echo delay after the reference as fed (ms) {delays}", flush=True)
    print(f"peak RSS of the program (run {' '.join(flags) or 'without echo cancellation'}, {engine}, after {answers} answers): {peak:.0f} MB", flush=True)
    print(f"self-trigger {engine}{'' if echo else ' (no echo cancellation)'}: {answers} answers with trigger words: {len(acted)} command(s) acted while it spoke {[e['intent'] for e in acted]}; "
          f"{len(ignored)} heard and ignored (wake phrases while speaking) {[e['intent'] for e in ignored]}", flush=True)


def ask_for_an_answer(the_room, skill, ask: Path, attempts: int = 3) -> dict:
    """Say "give us a tip" until it answers (a missed wake phrase is not what is measured here)."""
    says = len(skill.of("say"))
    for attempt in range(attempts):
        the_room.play(ask)
        try:
            return skill.wait_for("say", count=says + 1, timeout=8)[-1]
        except AssertionError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _private_env(the_room, folder: Path) -> dict:
    env = the_room.env
    for key in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        (folder / key).mkdir(parents=True, exist_ok=True)
        env[key] = str(folder / key)
    return env


def _packs(config_home: Path, category: str, texts: list[str]) -> None:
    folder = config_home / "phrases"
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("tip", "question"):
        items = "".join(f'\n[[phrase]]\nid = "{category}-{kind}-{i}"\nlevel = "light"\ntext = "{t}"\n' for i, t in enumerate(texts))
        (folder / f"{category}-{kind}.toml").write_text(f'[pack]\nkind = "{kind}"\ncategory = "{category}"\n{items}')
    (config_home / "config.toml").write_text(f'[content]\ncategories = ["{category}"]\nmoments = false\n')


# ---------------------------------------------------------------- cost


def cost(args) -> None:
    def rss_mb() -> float:
        return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024

    answer = render(LONG_TIP, "pyttsx3")
    before = rss_mb()
    from voice_skill.echo import EchoCanceller, PlaybackReference

    reference = PlaybackReference()
    echo = EchoCanceller(reference)
    loaded = rss_mb()
    far = i16(np.tile(answer, 6))  # about a minute
    starts = time.monotonic() + 1000.0
    reference.playing(far, RATE, starts)
    near = np.concatenate([np.zeros(1600, np.int16), (far.astype(np.float32) * 0.8).astype(np.int16)])  # 0.1 s late
    started = time.process_time()
    for i in range(0, len(near), 1600):
        echo.process(near[i : i + 1600].tobytes(), starts + i / RATE)
    spent = time.process_time() - started
    seconds = len(near) / RATE
    print(f"cost: the echo canceller over {seconds:.0f} s of playback: {spent / seconds:.4f} CPU s per audio s (alignment, reference lookup and the residual gate included); "
          f"RSS {before:.0f} MB before it, {loaded:.0f} MB with it (+{loaded - before:.0f} MB), peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python3 -m bench.barge_in", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    off = sub.add_parser("offline")
    off.add_argument("--engines", nargs="+", default=["pyttsx3", "piper"])
    off.add_argument("--voices", nargs="+", default=list(VOICES))
    off.add_argument("--cancellers", nargs="+", default=["no-echo", "none", "skill", "skill-warm", "aec3", "aec3-warm", "speexdsp"])
    off.add_argument("--room-tone", type=float, default=-65.0, help="dBFS of the noise under everything (a microphone never records digital silence)")
    off.add_argument("--phrase", default="stop")
    live = sub.add_parser("room")
    live.add_argument("--engines", nargs="+", default=["pyttsx3", "piper"])
    live.add_argument("--voices", nargs="+", default=["kal16", "slt", "rms"])
    live.add_argument("--gains", nargs="+", type=int, default=[0, -6])
    live.add_argument("--tries", type=int, default=10)
    live.add_argument("--self-trigger", type=int, default=0, help="answers with trigger words to play after the stop tries")
    live.add_argument("--seed", type=int, default=13)
    live.add_argument("--log", help="append the program's -v lines of each voice's tries to this file")
    live.add_argument("--without-echo-cancellation", action="store_true", help="the self-trigger answers without it (for the RSS baseline)")
    live.add_argument("--judge", action="store_true", help="the program with --judge (wake engine v3) for the 'stop' tries")
    live.add_argument("--ask-voice", default="kal16", help="the flite voice that asks for each answer (what is measured is 'stop'; v3 often misses kal16's 'give us a tip')")
    sub.add_parser("cost")
    args = parser.parse_args()
    if args.mode == "offline":
        from voice_skill.intents import load_triggers

        args.phrase_intent = load_triggers(REPO / "phrases" / "triggers.toml").intent_of(args.phrase)
        offline(args)
    elif args.mode == "room":
        room(args)
    else:
        cost(args)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
