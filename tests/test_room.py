"""The live loop in a virtual room: real PortAudio input and output streams through PulseAudio.

The skill's own voice comes back into its microphone, exactly as by a bed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soxr

from audio_factory import flite, sequence, write_wav
from conftest import SPEECH_ENGINES, requires_espeak, requires_flite, requires_piper
from room import USB_MICROPHONE, SkillProcess, VirtualRoom, room_tools_missing  # noqa: F401  (room fixture: conftest)

missing = room_tools_missing()
pytestmark = [
    pytest.mark.skipif(missing is not None, reason=missing or ""),
    requires_flite,
    requires_espeak,
]

SHORT_QUESTIONS = """\
[pack]
kind = "question"
category = "short"
{items}
"""
SHORT = {
    "question": ["What made you smile today?", "Where would you like to wake up tomorrow?", "What song reminds you of us?"],
    "tip": ["Hold hands for a minute tonight.", "Say one kind thing about your day.", "Put your phones in another room."],
}
# Answers that contain the trigger phrases themselves: the skill must not answer itself.
ECHO = {
    "question": ["If you could ask us a question about anything, what would it be?"],
    "tip": ["When one of you says give us a tip, ask your partner a question instead."],
}


def write_pack(folder: Path, category: str, kind: str, texts: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    items = "".join(f'\n[[phrase]]\nid = "{category}-{kind}-{i}"\nlevel = "light"\ntext = "{t}"\n' for i, t in enumerate(texts))
    (folder / f"{category}-{kind}.toml").write_text(f'[pack]\nkind = "{kind}"\ncategory = "{category}"\n{items}')


@pytest.fixture()
def content(private_dirs):
    """The skill speaks short test packs (fast tests), chosen through the real config file."""
    config_home = Path(private_dirs["XDG_CONFIG_HOME"]) / "voice-skill"
    for kind, texts in SHORT.items():
        write_pack(config_home / "phrases", "short", kind, texts)
    for kind, texts in ECHO.items():
        write_pack(config_home / "phrases", "echo", kind, texts)

    def choose(category: str) -> None:
        (config_home / "config.toml").write_text(f'[content]\ncategories = ["{category}"]\n')

    choose("short")
    return choose


@pytest.fixture(scope="module")
def said(tmp_path_factory, audio_cache):
    """WAV files of a person speaking in the room (flite kal16), with a breath of silence around."""
    folder = tmp_path_factory.mktemp("said")

    def make(text: str, voice: str = "kal16") -> Path:
        path = folder / f"{voice}-{text.replace(' ', '_')}.wav"
        if not path.exists():
            audio, _ = sequence([(text, flite(text, voice, audio_cache))], gap=0.6, lead=0.8)
            write_wav(path, audio * 0.8)
        return path

    return make


def skill_env(room: VirtualRoom, private_dirs: dict) -> dict:
    env = room.env
    env.update(private_dirs)
    return env


def start_skill(room, private_dirs, *args):
    return SkillProcess.start(room, "--input-device", "pulse", "--output-device", "pulse", *args, env=skill_env(room, private_dirs))


def envelope(audio: np.ndarray, rate: int, hop: float = 0.02) -> np.ndarray:
    n = int(rate * hop)
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    return np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-4)


def best_match(recording: np.ndarray, expected: np.ndarray) -> float:
    """Highest normalised correlation of the expected sound's envelope anywhere in the recording."""
    rec, exp = envelope(recording, 16000), envelope(expected, 16000)
    exp = (exp - exp.mean()) / (exp.std() + 1e-9)
    best = -1.0
    for start in range(0, len(rec) - len(exp) + 1):
        window = rec[start : start + len(exp)]
        score = float(np.dot((window - window.mean()) / (window.std() + 1e-9), exp) / len(exp))
        best = max(best, score)
    return best


def engine_for(name: str):
    from voice_skill.piper_voice import default_voice
    from voice_skill.speech import SpeechEngine

    return SpeechEngine("piper", default_voice()) if name == "piper" else SpeechEngine()


def rendered(text: str, engine: str = "pyttsx3", takes: int = 1) -> list[np.ndarray]:
    """What the skill's answer sounds like (speech only), rendered by the real engine, at 16 kHz.
    Piper's renders vary a little (its generator noise is not seeded): `takes` renders of it."""
    from voice_skill.speech import Synthesizer, Voice

    sounds = []
    with Synthesizer(engine=engine_for(engine)) as synth:
        for take in range(takes):
            # A volume a hair apart per take: the worker renders afresh instead of repeating its last render.
            sound = synth.render(text, Voice(volume=round(0.6 - 0.001 * take, 3)))
            sounds.append(soxr.resample(sound.samples.astype(np.float32) / 32768, sound.rate, 16000))
    return sounds


# Piper's renders of one sentence match each other at 0.69-0.93 (its timing varies from render
# to render), an unrelated sentence at 0.44 at most; espeak-ng renders the same every time.
HEARD = {"pyttsx3": 0.8, "piper": 0.65}


def heard(recording: np.ndarray, text: str, engine: str = "pyttsx3") -> float:
    """How well the answer `text` matches the room recording (best over Piper's varying renders)."""
    return max(best_match(recording, expected) for expected in rendered(text, engine, takes=5 if engine == "piper" else 1))


def chime_heard(audio: np.ndarray, window: float = 0.1) -> bool:
    """The chime's two notes (659.25 Hz, then 987.77 Hz: pure tones) stand out of the spectrum
    around them, one right after the other."""
    return notes_heard(audio, 659.25, 987.77, window)


def ready_sound_heard(audio: np.ndarray) -> bool:
    """The ready sound's two low notes: 392 Hz, then 493.88 Hz."""
    return notes_heard(audio, 392.0, 493.88)


def notes_heard(audio: np.ndarray, first_tone: float, second_tone: float, window: float = 0.1) -> bool:
    n = int(window * 16000)
    freqs = np.fft.rfftfreq(n, 1 / 16000)

    def stands_out(block: np.ndarray, tone: float) -> bool:
        spectrum = np.abs(np.fft.rfft(block * np.hanning(n)))
        at = spectrum[np.abs(freqs - tone) < 15].max()
        around = np.median(spectrum[(np.abs(freqs - tone) > 60) & (np.abs(freqs - tone) < 300)])
        return at > 1.0 and at > 10 * (around + 1e-9)

    hop = n // 2
    starts = range(0, len(audio) - n, hop)
    first = [i for i in starts if stands_out(audio[i : i + n], first_tone)]
    return any(stands_out(audio[j : j + n], second_tone) for i in first for j in range(i + hop, min(i + 5 * hop, len(audio) - n), hop))


@pytest.mark.parametrize("engine", SPEECH_ENGINES)
def test_full_loop_wake_chime_and_answer_heard_in_the_room(room, private_dirs, content, said, engine):
    """The answer, rendered ahead while the skill listened, starts within 150 ms of the wake
    decision (issue 11: even with Piper, which is slow on a Raspberry Pi), and is heard."""
    skill = start_skill(room, private_dirs, "--speech-engine", engine)
    try:
        time.sleep(2.0)  # the skill renders the first answers ahead as it starts listening
        with room.recorder() as recording:
            room.play(said("ask us a question"))
            say = skill.wait_for("say", timeout=15)[0]
            time.sleep(say["seconds"] + 1.0)
        assert [e["intent"] for e in skill.of("wake")] == ["question"]
        assert say["intent"] == "question" and say["id"].startswith("short-question")
        print(f"{engine}: first_audio_ms {say['first_audio_ms']}, rendered ahead: {say['ahead']}, {say['seconds']} s")
        assert say["ahead"], "the answer was rendered after the wake phrase, not ahead"
        assert say["first_audio_ms"] < 150
        match = heard(recording.audio, say["text"], engine)
        others = [t for t in SHORT["question"] + SHORT["tip"] if t != say["text"]]
        control = max(best_match(recording.audio, rendered(t, engine)[0]) for t in others)
        print(f"{engine}: correlation with the answer {match:.2f}, with other answers {control:.2f}")
        assert match > HEARD[engine] and match > control + 0.05, f"the answer was not found in the room recording (correlation {match:.2f}, other answers {control:.2f})"
        assert chime_heard(recording.audio), "no chime in the room"
    finally:
        assert skill.stop() == 0


def test_a_soft_sound_says_listening_has_started_unless_turned_off(room, private_dirs, content, said):
    """Issue 11: a screen-free device says it is listening; `[skill] ready_sound = false` keeps it quiet.
    The sound is not heard as speech, and the skill hears a phrase said right after it."""
    with room.recorder() as recording:
        skill = start_skill(room, private_dirs)
        try:
            time.sleep(0.5)
        finally:
            skill_events = skill.events
            assert skill.stop() == 0
    assert ready_sound_heard(recording.audio), "no ready sound in the room"
    assert not chime_heard(recording.audio)
    assert not [e for e in skill_events if e["event"] in ("wake", "ignored")]
    config = Path(private_dirs["XDG_CONFIG_HOME"]) / "voice-skill" / "config.toml"
    config.write_text(config.read_text() + "\n[skill]\nready_sound = false\n")
    # Only the start is recorded: a voice's harmonics can pass for the two notes.
    with room.recorder() as recording:
        skill = start_skill(room, private_dirs)
        time.sleep(0.5)
    try:
        assert not ready_sound_heard(recording.audio), "a ready sound though ready_sound = false"
        room.play(said("ask us a question"))
        assert skill.wait_for("wake", timeout=15)[0]["intent"] == "question"
    finally:
        assert skill.stop() == 0


@pytest.mark.parametrize("engine", SPEECH_ENGINES)
def test_check_shows_the_microphone_level_and_plays_on_the_speaker(room, private_dirs, content, said, engine):
    """`voice-skill check`: the level bar moves when someone speaks, the chime and a sentence
    are heard in the room (in the engine's voice), the paths are printed, and nothing is left to fix."""
    with room.recorder() as recording:
        check = subprocess.Popen(
            [sys.executable, "-m", "voice_skill", "check", "--seconds", "3", "--input-device", "pulse", "--output-device", "pulse", "--speech-engine", engine],
            env=skill_env(room, private_dirs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(1.5)
        room.play(said("ask us a question"))
        out, err = check.communicate(timeout=60)
    assert check.returncode == 0, (out, err)
    levels = [float(part.split()[-2]) for line in out.splitlines() for part in line.split("\r") if part.strip().startswith("level ")]
    assert len(levels) >= 10 and max(levels) > min(levels) + 20, levels
    assert "all good" in out and "config: " in out and "phrase-bag.json" in out
    assert chime_heard(recording.audio), "no chime in the room"
    assert ("voice: Piper, " if engine == "piper" else "voice: pyttsx3, ") in out
    assert heard(recording.audio, "Hello. This is voice skill. If you can hear me, the speaker works.", engine) > HEARD[engine]
    assert not list(Path(private_dirs["XDG_STATE_HOME"]).rglob("*.wav")), "audio was kept"


@requires_piper
def test_say_speaks_one_answer_in_the_natural_voice(room, private_dirs, content):
    """`voice-skill say --speech-engine piper`: one question, in Piper's voice, heard in the room."""
    with room.recorder() as recording:
        result = subprocess.run(
            [sys.executable, "-m", "voice_skill", "say", "--json", "--output-device", "pulse", "--speech-engine", "piper"],
            env=skill_env(room, private_dirs), capture_output=True, text=True, timeout=60,
        )
        time.sleep(0.5)
    assert result.returncode == 0, result.stderr
    said_text = json.loads(result.stdout)["text"]
    match = heard(recording.audio, said_text, "piper")
    espeak = best_match(recording.audio, rendered(said_text, "pyttsx3")[0])
    print(f"say with Piper: correlation {match:.2f} with Piper's render, {espeak:.2f} with espeak-ng's")
    assert match > 0.8 and match > espeak, (match, espeak)
    assert chime_heard(recording.audio)


@pytest.mark.parametrize("engine,echo", [
    pytest.param("pyttsx3", False, id="pyttsx3"),
    pytest.param("piper", False, id="piper", marks=requires_piper),
    pytest.param("pyttsx3", True, id="pyttsx3-echo-cancellation"),
])
def test_answers_containing_trigger_words_never_wake_the_skill(room, private_dirs, content, said, engine, echo):
    """With echo cancellation on too (issue 13): commands are then heard while it speaks, and an
    answer's own "ask us a question" must still not act."""
    content("echo")
    skill = start_skill(room, private_dirs, "--speech-engine", engine, *(["--echo-cancellation"] if echo else []))
    try:
        room.play(said("give us a tip"))
        say = skill.wait_for("say", timeout=15)[0]
        assert "give us a tip" in say["text"]
        time.sleep(say["seconds"] + 2.0)
        room.play(said("ask us a question"))
        second = skill.wait_for("say", count=2, timeout=15)[1]
        assert "ask us a question" in second["text"]
        time.sleep(second["seconds"] + 2.0)
        assert [e["intent"] for e in skill.of("wake")] == ["tip", "question"], skill.events
    finally:
        skill.stop()


def test_follow_ups_inside_and_outside_the_window(room, private_dirs, content, said):
    skill = start_skill(room, private_dirs)
    try:
        room.play(said("give us a tip"))
        first = skill.wait_for("say", timeout=15)[0]
        time.sleep(first["seconds"] + 0.8)
        room.play(said("another one"))
        second = skill.wait_for("say", count=2, timeout=15)[1]
        assert second["intent"] == "another" and second["id"].startswith("short-tip") and second["id"] != first["id"]
        time.sleep(second["seconds"] + 0.8)
        room.play(said("say that again"))  # (kal16's "repeat that" is a known miss: see the closing note)
        third = skill.wait_for("say", count=3, timeout=15)[2]
        assert third["intent"] == "repeat" and third["id"] == second["id"]
        time.sleep(third["seconds"] + 9.0)  # the 8 s window closes
        room.play(said("another one"))
        # The "another one" said outside the window is ignored. (Other ignored events may come
        # before it: in one CI run a word of the skill's own answer was heard as "stop" and,
        # rightly, ignored. Nothing acts on them: still three answers.)
        ignored = skill.wait_for("ignored", timeout=10, intent="another")[0]
        assert ignored["reason"] == "no follow-up window"
        print("other ignored events:", [e for e in skill.of("ignored") if e["intent"] != "another"])
        assert len(skill.of("say")) == 3
    finally:
        skill.stop()


def test_stop_in_the_window_and_stop_while_speaking(room, private_dirs, content, said):
    long_text = "Close your eyes and take three slow breaths together, then tell each other about the best part of the day and the hardest part of the day, and listen without interrupting."
    write_pack(Path(private_dirs["XDG_CONFIG_HOME"]) / "voice-skill" / "phrases", "long", "tip", [long_text])
    write_pack(Path(private_dirs["XDG_CONFIG_HOME"]) / "voice-skill" / "phrases", "long", "question", [long_text + " What do you think?"])
    content("long")
    skill = start_skill(room, private_dirs, "--echo-cancellation")
    try:
        room.play(said("give us a tip"))
        say = skill.wait_for("say", timeout=15)[0]
        assert say["seconds"] > 8
        time.sleep(2.0)
        # The target is 9 "stop"s of 10 (bench.barge_in room), and the session's first answer
        # is its weakest: as a person would, it says "stop" again if the first is not heard.
        stopped = []
        for attempt in range(2):
            started = time.monotonic()
            room.play(said("stop"))
            deadline = time.monotonic() + 2.5
            while not stopped and time.monotonic() < deadline:
                time.sleep(0.1)
                stopped = [e for e in skill.of("wake") if e["intent"] == "stop"]
            print(f"stop while speaking, try {attempt + 1}: {'heard' if stopped else 'not heard'} ({time.monotonic() - started:.1f} s after it was said)")
            if stopped:
                break
        # Issue 13: the echo canceller finds the answer's delay in its first half second and
        # takes the answer out; "stop", as loud as the answer, is what is left.
        assert stopped, skill.stderr_lines[-20:]
        assert stopped[0].get("while_speaking") is True
    finally:
        skill.stop()


@pytest.mark.parametrize("engine", SPEECH_ENGINES)
def test_voice_adjustments_change_and_persist(room, private_dirs, content, said, engine):
    state = Path(private_dirs["XDG_STATE_HOME"]) / "voice-skill" / "voice.json"
    skill = start_skill(room, private_dirs, "--speech-engine", engine)
    try:
        # Voice changes are heard in the follow-up window, right after an answer.
        room.play(said("give us a tip"))
        first = skill.wait_for("say", timeout=15)[0]
        time.sleep(first["seconds"] + 0.8)
        room.play(said("speak softer"))
        softer = skill.wait_for("voice", timeout=15)[0]
        assert softer["change"] == "softer" and softer["volume"] < 0.6
        time.sleep(2.0)
        room.play(said("speak slower"))
        slower = skill.wait_for("voice", count=2, timeout=15)[1]
        assert slower["change"] == "slower" and slower["rate"] < 140
    finally:
        skill.stop()
    saved = json.loads(state.read_text())
    assert saved == {"rate": slower["rate"], "volume": softer["volume"]}
    # After a restart the answers are slower: the same short answer takes longer.
    skill = start_skill(room, private_dirs, "--speech-engine", engine)
    try:
        room.play(said("give us a tip"))
        say = skill.wait_for("say", timeout=15)[0]
    finally:
        skill.stop()
    assert say["volume"] == softer["volume"]
    from voice_skill.runner import SpokenAnswers
    from voice_skill.speech import Synthesizer, Voice

    # Piper's durations vary from render to render: the default length is the mean of three
    # fresh renders (a volume a hair apart each, so that none is the worker's earlier render).
    takes = 3 if engine == "piper" else 1
    with Synthesizer(Voice(), engine=engine_for(engine)) as synth:
        answers = SpokenAnswers(synth, None)
        default_length = sum(answers.sound_for(say["text"], Voice(volume=round(0.6 - 0.001 * i, 3))).duration for i in range(takes)) / takes  # chime included, like say["seconds"]
    print(f"{engine}: {say['seconds']} s at rate {slower['rate']}, {default_length:.2f} s at the default rate")
    assert say["seconds"] > default_length * 1.05


def test_microphone_at_its_native_48k_rate_is_resampled(room, private_dirs, content, said):
    skill = start_skill(room, private_dirs, "--input-rate", "48000")
    try:
        room.play(said("give us a tip"))
        assert skill.wait_for("wake", timeout=15)[0]["intent"] == "tip"
    finally:
        skill.stop()


def test_devices_by_index(room, private_dirs, content, said):
    listing = subprocess_devices(room)
    index = next(line.split()[0] for line in listing.splitlines() if " pulse " in f" {line} ")
    skill = SkillProcess.start(room, "--input-device", index, "--output-device", index, env=skill_env(room, private_dirs))
    try:
        room.play(said("ask us a question"))
        assert skill.wait_for("wake", timeout=15)[0]["intent"] == "question"
    finally:
        skill.stop()


def test_devices_has_a_header_and_marks_the_defaults(room):
    lines = subprocess_devices(room).splitlines()
    assert lines[0].startswith("index") and "* = the default" in lines[0]
    rows = lines[1:]
    assert sum("in:" in row and "*" in row.split("in:")[1].split(",")[0] for row in rows) == 1, rows
    assert sum("out:" in row and "*" in row.split("out:")[1].split(",")[0] for row in rows) == 1, rows


def subprocess_devices(room) -> str:
    return subprocess.run([sys.executable, "-m", "voice_skill", "devices"], env=room.env, capture_output=True, text=True, check=True).stdout


def test_microphone_loss_is_survived(room, private_dirs, content, said):
    skill = start_skill(room, private_dirs)
    try:
        room.stop()
        time.sleep(2.5)
        room.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum("microphone open" in line for line in skill.stderr_lines) < 2:
            time.sleep(0.2)
        time.sleep(1.0)
        assert skill.process.poll() is None, skill.stderr_lines
        assert any("microphone lost" in line for line in skill.stderr_lines), skill.stderr_lines
        room.play(said("ask us a question"))
        assert skill.wait_for("wake", timeout=15)[0]["intent"] == "question"
    finally:
        skill.stop()


def lost_sound_heard(audio: np.ndarray) -> bool:
    """The microphone-lost tone's two low notes, falling: 329.63 Hz, then 220 Hz."""
    return notes_heard(audio, 329.63, 220.0)


def test_a_lost_microphone_is_said_with_a_low_tone_once(room, private_dirs, content, said):
    """Issue 11: a screen-free device is never silent about being deaf. The microphone goes
    (its stream is killed in the sound server; the speaker stays): one low falling tone in the
    room, then the skill reconnects and hears again."""
    skill = start_skill(room, private_dirs)
    try:
        time.sleep(1.0)
        with room.recorder() as recording:
            assert room.cut_microphone_of(skill.process.pid) == 1, "the skill's microphone stream was not found"
            skill.wait_for("microphone_lost", timeout=15)
            time.sleep(1.5)
        assert lost_sound_heard(recording.audio), "no microphone-lost tone in the room"
        assert not ready_sound_heard(recording.audio) and not chime_heard(recording.audio)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum("microphone open" in line for line in skill.stderr_lines) < 2:
            time.sleep(0.2)
        time.sleep(1.0)
        assert len(skill.of("microphone_lost")) == 1, skill.events  # once per outage
        room.play(said("ask us a question"))
        assert skill.wait_for("wake", timeout=15)[0]["intent"] == "question"
    finally:
        skill.stop()


def reopened(skill: SkillProcess, times: int, timeout: float) -> float | None:
    """Seconds until the skill has opened its microphone `times` times in all (None: not in time)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if sum("microphone open" in line for line in skill.stderr_lines) >= times:
            return time.monotonic() - started
        time.sleep(0.05)
    return None


def test_a_phrase_said_right_after_the_microphone_is_plugged_in_again_is_heard(room, private_dirs, content, said):
    """Issue 23 (papercut 15): a USB microphone unplugged for a while and plugged in again is
    listened to again at once, so the first phrase said after it is heard: 2.5 s after it is
    back (the issue's case), and said the moment the skill has reopened it. Before, the retries
    backed off (0.5 s doubling to 10 s): eleven seconds unplugged, and the skill opened it again
    5.4 s after it was back, the phrase gone. After an outage, what it heard was also timed on
    the recognizer's clock, which had not counted the outage, against the end of its answer on
    the stream's, which had: a phrase after the next outage was taken for its own voice.

    The room's sink renders its air in 2 s blocks while nothing asks for less, and a microphone
    opened then gets its first audio 0 to 2 s late (measured), the rest lost: that is the room's,
    not the skill's (a USB microphone's first block comes a block after it is opened). The
    room is recorded throughout, which keeps the sink rendering in 20 ms blocks: the first
    block then comes within about 0.1 s, as from a USB microphone."""
    room.usb_microphone_for(Path(private_dirs["XDG_CONFIG_HOME"]))
    room.plug_in_microphone()
    try:
        with room.recorder():
            skill = SkillProcess.start(room, "--input-device", USB_MICROPHONE, "--output-device", "pulse", "-v", env=skill_env(room, private_dirs))
            try:
                time.sleep(1.0)
                room.unplug_microphone(skill.process.pid)
                skill.wait_for("microphone_lost", timeout=15)
                time.sleep(11.0)  # long enough for the old back-off's retries to be 8 s apart
                room.plug_in_microphone()
                took = reopened(skill, 2, timeout=2.5)
                print(f"plugged in again: reopened {'after %.2f s' % took if took is not None else 'not within 2.5 s'}")
                time.sleep(max(0.0, 2.5 - (took or 2.5)))
                room.play(said("ask us a question"))
                assert skill.wait_for("wake", timeout=15)[0]["intent"] == "question", "\n".join(skill.stderr_lines[-20:])
                say = skill.wait_for("say", timeout=15)[0]
                time.sleep(say["seconds"] + 1.5)  # its answer played, heard by its own microphone
                # Pulled out and plugged straight back in; a phrase the moment the skill has the
                # microphone again (the recording begins with 0.8 s of silence).
                room.unplug_microphone(skill.process.pid)
                skill.wait_for("microphone_lost", count=2, timeout=15)
                time.sleep(1.0)
                room.plug_in_microphone()
                assert reopened(skill, 3, timeout=10) is not None, "\n".join(skill.stderr_lines[-20:])
                room.play(said("give us a tip"))
                assert [e["intent"] for e in skill.wait_for("wake", count=2, timeout=15)] == ["question", "tip"], "\n".join(skill.stderr_lines[-20:])
                assert skill.process.poll() is None
            finally:
                skill.stop()
    finally:
        room.unplug_microphone()


def test_sigterm_and_sigint_stop_within_a_second(room, private_dirs, content):
    for sig in (signal.SIGTERM, signal.SIGINT):
        skill = start_skill(room, private_dirs)
        started = time.monotonic()
        skill.process.send_signal(sig)
        code = skill.wait_for_exit(5)
        took = time.monotonic() - started
        assert code == 0 and took < 1.0, (sig, code, took, skill.stderr_lines)
        time.sleep(0.2)
        assert skill.of("done"), skill.events


@contextmanager
def speaking_a_long_answer(room, private_dirs, content, said):
    """The skill, with a phrase pack whose every answer takes about ten seconds to say, asked
    for a tip: given once it has begun to say it, stopped afterwards."""
    long_text = "Lie close, and take turns naming three small things your partner did this week that made your life easier, then say thank you for each of them, slowly."
    folder = Path(private_dirs["XDG_CONFIG_HOME"]) / "voice-skill" / "phrases"
    write_pack(folder, "slow", "tip", [long_text])
    write_pack(folder, "slow", "question", [long_text + " Which one mattered most?"])
    content("slow")
    skill = start_skill(room, private_dirs)
    try:
        room.play(said("give us a tip"))
        skill.wait_for("say", timeout=15)
        yield skill
    finally:
        skill.stop()


def test_sigterm_while_speaking_cuts_the_answer_and_stops_within_a_second(room, private_dirs, content, said):
    with speaking_a_long_answer(room, private_dirs, content, said) as skill:
        time.sleep(1.0)  # well inside the ten-second answer
        started = time.monotonic()
        skill.process.send_signal(signal.SIGTERM)
        code = skill.wait_for_exit(5)
        took = time.monotonic() - started
        assert code == 0 and took < 1.0, (code, took, skill.stderr_lines)


def test_speaker_failure_mid_answer_is_survived(room, private_dirs, content, said):
    with speaking_a_long_answer(room, private_dirs, content, said) as skill:
        time.sleep(1.5)
        room.stop()  # the speaker (and the microphone) vanish mid-answer
        time.sleep(1.0)
        room.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum("microphone open" in line for line in skill.stderr_lines) < 2:
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("speaker failed" in line for line in skill.stderr_lines):
            time.sleep(0.2)
        assert skill.process.poll() is None, "\n".join(skill.stderr_lines)
        assert any("speaker failed" in line for line in skill.stderr_lines), "\n".join(skill.stderr_lines)
        # The answer's end (here: the speaker's failure) is followed by a short spell in which
        # the skill takes what it hears for its own voice's echo; a person speaks after it.
        time.sleep(1.0)
        room.play(said("ask us a question"))
        assert skill.wait_for("say", count=2, timeout=20)[1]["intent"] == "question"


def test_a_consumer_that_falls_behind_loses_audio_counted_and_logged(room, monkeypatch, caplog):
    import logging

    for key in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH"):
        monkeypatch.setenv(key, room.env[key])
    from voice_skill.audio import Microphone, reinitialize_portaudio, resolve_device

    reinitialize_portaudio()
    mic = Microphone(resolve_device("pulse", "input"), queue_seconds=0.3)
    mic.open()
    try:
        time.sleep(4.0)  # nobody reads: the bounded queue fills and further blocks are dropped
        with caplog.at_level(logging.WARNING, logger="voice_skill"):
            blocks = mic.blocks()
            for _ in range(3):
                next(blocks)
    finally:
        mic.close()
    assert mic.dropped_blocks >= 5
    assert "block(s) dropped" in caplog.text
