"""The echo canceller at the audio edge (voice_skill/echo.py), on real rendered speech."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import soxr

from conftest import requires_espeak

from voice_skill.echo import REFERENCE_LEAD, EchoCanceller, PlaybackReference

RATE = 16000


def _livekit_missing() -> bool:
    try:
        import livekit.rtc  # noqa: F401
    except (ImportError, OSError):
        return True
    return False


requires_livekit = pytest.mark.skipif(_livekit_missing(), reason="livekit (the echo canceller) is not installed here (pip install -e '.[barge-in]')")


def test_where_livekit_cannot_load_the_skill_is_told_why_and_runs_without_it():
    """32-bit Arm has no livekit wheel: build_echo_canceller says so (the CLI prints it once
    and the skill runs without barge-in). Here the import is blocked to stand for that."""
    program = (
        "import sys; sys.modules['livekit'] = None\n"
        "from voice_skill.echo import PlaybackReference, build_echo_canceller\n"
        "echo, why = build_echo_canceller(PlaybackReference())\n"
        "print(echo, why)\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("None the livekit package is not installed"), result.stdout


@pytest.fixture(scope="module")
def answer() -> np.ndarray:
    """An answer as the skill speaks it (espeak-ng through the real worker), 16 kHz int16."""
    from voice_skill.speech import Synthesizer, Voice

    with Synthesizer() as synth:
        sound = synth.render("Hold hands for a minute tonight, and say one kind thing about your day before you sleep.", Voice(volume=0.6))
    return (soxr.resample(sound.samples.astype(np.float32) / 32768, sound.rate, RATE) * 32767).astype(np.int16)


def level_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-9)


def cancel(echo: EchoCanceller, mic: np.ndarray, first_sample_at: float) -> np.ndarray:
    return np.concatenate([np.frombuffer(echo.process(mic[i : i + 1600].tobytes(), first_sample_at + i / RATE), dtype=np.int16) for i in range(0, len(mic), 1600)])


@requires_livekit
@requires_espeak
def test_the_answer_played_comes_back_30_db_weaker_and_its_delay_is_measured(answer):
    """The room's digital loopback, 80 ms late and 3 dB down: after the first second the echo
    is cancelled by more than 30 dB (39 dB measured here; 45-70 dB on longer answers), and the delay is found."""
    reference = PlaybackReference()
    echo = EchoCanceller(reference)
    plays_at = 500.0
    reference.playing(answer, RATE, plays_at)
    delay = int(0.08 * RATE)
    mic = (np.concatenate([np.zeros(delay, np.int16), answer, np.zeros(RATE, np.int16)]) * 0.7).astype(np.int16)
    out = cancel(echo, mic, plays_at)
    later = slice(RATE, len(answer))
    assert level_db(mic[later]) - level_db(out[later]) > 30, (level_db(mic[later]), level_db(out[later]))
    assert echo.delays and abs(echo.delays[0] - (0.08 + REFERENCE_LEAD)) < 0.005, echo.delays


@requires_livekit
@requires_espeak
def test_without_a_reference_or_a_capture_time_the_audio_is_unchanged(answer):
    reference = PlaybackReference()
    echo = EchoCanceller(reference)
    pcm = answer[:1600].tobytes()
    assert echo.process(pcm, None) == pcm  # a file: no capture time
    assert echo.process(pcm, 10.0) == pcm  # nothing played
    segment = reference.playing(answer, RATE, 100.0)
    reference.cut(segment, 100.5)  # stopped half a second in
    assert echo.process(pcm, 102.0) == pcm  # well after the cut (beyond the echo tail)
    assert echo.process(pcm, 100.2) != pcm  # while it played
    assert echo.frames == 10


@requires_livekit
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_the_echo_canceller_opens_no_network_connection():
    """livekit's library is a whole real-time communication SDK: loading it and cancelling echo
    must not open a socket to anywhere (Python's audit hooks cannot see native code)."""
    program = (
        "import numpy as np\n"
        "from voice_skill.echo import EchoCanceller, PlaybackReference\n"
        "ref = PlaybackReference(); echo = EchoCanceller(ref)\n"
        "noise = (np.random.default_rng(0).standard_normal(16000) * 3000).astype(np.int16)\n"
        "ref.playing(noise, 16000, 50.0)\n"
        "[echo.process(noise[i:i+1600].tobytes(), 50.0 + i / 16000) for i in range(0, 16000, 1600)]\n"
        "assert echo.frames == 100\n"
    )
    traced = subprocess.run(["strace", "-f", "-qq", "-e", "trace=socket,connect,sendto", sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert traced.returncode == 0, traced.stderr[-2000:]
    calls = [line for line in traced.stderr.splitlines() if "socket(" in line or "connect(" in line or "sendto(" in line]
    assert not [c for c in calls if "AF_INET" in c or "AF_NETLINK" in c], calls
