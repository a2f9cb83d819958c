"""The echo canceller at the audio edge (voice_skill/echo.py), on real rendered speech."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soxr

from audio_factory import flite
from conftest import requires_espeak

from voice_skill.echo import ALIGN_SECONDS, EchoCanceller, PlaybackReference, find_delay

RATE = 16000


@pytest.fixture(scope="module")
def answer() -> np.ndarray:
    """An answer as the skill speaks it (espeak-ng through the real worker), 16 kHz int16."""
    from voice_skill.speech import Synthesizer, Voice

    with Synthesizer() as synth:
        sound = synth.render("Hold hands for a minute tonight, and say one kind thing about your day before you sleep.", Voice(volume=0.6))
    return (soxr.resample(sound.samples.astype(np.float32) / 32768, sound.rate, RATE) * 32767).astype(np.int16)


def level_db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-9)


def cancel(echo: EchoCanceller, mic: np.ndarray, starts: float) -> np.ndarray:
    return np.concatenate([np.frombuffer(echo.process(mic[i : i + 1600].tobytes(), starts + i / RATE), dtype=np.int16) for i in range(0, len(mic), 1600)])


def loopback(sounds: list[tuple[np.ndarray, float, float]], seconds: float, room_tone_db: float = -65.0) -> tuple[PlaybackReference, np.ndarray, float]:
    """A digital loopback as in the virtual room: each (sound, stamp, delay) is stamped at
    `stamp` seconds into the microphone stream and its echo comes `delay` seconds after
    the stamp, 3 dB down, over room tone. Returns the reference, the microphone's audio and
    the monotonic time of its first sample."""
    reference = PlaybackReference()
    starts = time.monotonic() + 100.0  # stamps in the future: nothing is dropped from the reference's history
    mic = np.random.default_rng(1).standard_normal(int(seconds * RATE)) * 32768 * 10 ** (room_tone_db / 20)
    for sound, stamp, delay in sounds:
        reference.playing(sound, RATE, starts + stamp)
        at = int(round((stamp + delay) * RATE))
        mic[at : at + len(sound)] += sound[: len(mic) - at] * 0.7
    return reference, np.clip(mic, -32768, 32767).astype(np.int16), starts


@requires_espeak
def test_the_echo_is_found_on_both_sides_of_its_stamp_in_half_a_second(answer):
    """PortAudio's latency figures are off by 80-230 ms either way: GCC-PHAT finds where the
    echo is, to the sample, from the first half second."""
    start, size = RATE, int(ALIGN_SECONDS * RATE)  # the microphone's window: half a second, 1 s into the answer
    reference = answer[start - int(0.4 * RATE) : start + size + int(0.4 * RATE)]  # from 0.4 s before it to 0.4 s after
    for delay in (-0.15, 0.0, 0.21):
        at = start - int(round(delay * RATE))
        found, clarity = find_delay(answer[at : at + size], reference, -0.4, 0.4)
        assert abs(found - delay) < 1.5 / RATE and clarity > 3, (delay, found, clarity)
    assert find_delay(np.zeros(RATE, np.int16), answer[: int(1.8 * RATE)], -0.4, 0.4) is None


@requires_espeak
def test_each_answer_is_aligned_and_its_echo_comes_back_more_than_30_db_weaker(answer):
    """Two answers whose echoes come at different delays (every sound opens a new output
    stream): each is aligned in its first half second, during which the room's background
    comes out instead (it is deaf then), and the echo after that is cancelled by more than
    30 dB, from the first answer on."""
    length = len(answer) / RATE
    reference, mic, starts = loopback([(answer, 1.0, -0.12), (answer, 3.0 + length, 0.08)], 6.0 + 2 * length)
    echo = EchoCanceller(reference)
    out = cancel(echo, mic, starts)
    assert [round(d, 3) for d in echo.delays] == [-0.12, 0.08]
    for stamp, delay in ((1.0, -0.12), (3.0 + length, 0.08)):
        later = slice(int((stamp + delay + 1.0) * RATE), int((stamp + delay + length) * RATE))
        assert level_db(mic[later]) - level_db(out[later]) > 30, (stamp, level_db(mic[later]), level_db(out[later]))
        deaf = slice(int((stamp + delay + 0.05) * RATE), int((stamp + delay + 0.35) * RATE))
        assert level_db(out[deaf]) < level_db(mic[deaf]) - 30  # the room's background, not the echo
    assert echo.frames > 0 and echo.gated > 0


@requires_espeak
def test_stop_said_over_the_answer_is_heard_after_cancelling(answer, audio_cache: Path):
    """The point of it: "stop" said 1.5 s into an answer, as loud as the answer, on a digital
    loopback: the wake engine hears it in what the canceller leaves, and hears nothing of the
    answer itself; without cancelling it hears no "stop"."""
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir
    from voice_skill.recognizers.choose import build_wake_engine

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    engine = build_wake_engine("fused", table, report=lambda line: None)
    stop = flite("stop", "slt", audio_cache)
    stop = (stop / np.sqrt(np.mean(stop[np.abs(stop) > 1e-3] ** 2)) * np.sqrt(np.mean((answer[np.abs(answer) > 32] / 32768.0) ** 2)) * 0.7 * 32767).astype(np.int16)

    def heard(pcm: np.ndarray) -> list[str]:
        engine.restart()
        results = [h for i in range(0, len(pcm), 3200) for h in engine.feed(pcm[i : i + 3200].tobytes())] + engine.finish()
        return [table.intent_of(h.text) for h in results if h.text]

    reference, mic, starts = loopback([(answer, 1.0, -0.1)], 2.0 + len(answer) / RATE)
    at = int(2.4 * RATE)
    mic[at : at + len(stop)] = np.clip(mic[at : at + len(stop)].astype(np.int32) + stop, -32768, 32767)
    assert heard(cancel(EchoCanceller(reference), mic, starts)) == ["stop"]
    assert "stop" not in heard(mic)


@requires_espeak
def test_without_a_reference_or_a_capture_time_the_audio_is_unchanged(answer):
    reference = PlaybackReference()
    echo = EchoCanceller(reference)
    pcm = answer[:1600].tobytes()
    assert echo.process(pcm, None) == pcm  # a file: no capture time
    assert echo.process(pcm, 10.0) == pcm  # nothing played
    segment = reference.playing(answer, RATE, 100.0)
    reference.cut(segment, 101.5)  # stopped a second and a half in
    quiet = (np.random.default_rng(2).standard_normal(1600) * 30).astype(np.int16).tobytes()
    assert echo.process(quiet, 103.0) == quiet  # well after the cut (beyond the echo tail)
    assert echo.process(pcm, 100.2) == quiet  # while it played: deaf while it finds the delay, the room's background instead
    chime = reference.playing(answer[: RATE // 2], RATE, 110.0)  # a sound too short to hold speech (a chime) passes
    assert echo.process(pcm, chime.starts + 0.1) == pcm


def test_capture_times_come_from_counting_samples_not_from_when_blocks_arrive():
    """Blocks arrive in bursts (in the virtual room up to 0.11 s late, in a sawtooth): the
    capture times step by exactly one block, from the least late arrival; a block far later
    than the count says (samples lost) starts the count again."""
    from voice_skill.audio import SampleClock

    clock = SampleClock(16000)
    rng = np.random.default_rng(0)
    lateness = [0.08, 0.03] + list(rng.uniform(0.005, 0.11, 40)) + [0.002] + list(rng.uniform(0.005, 0.11, 30))
    stamps = [clock.block(10.0 + 0.1 * i + late, 1600) for i, late in enumerate(lateness)]
    assert np.allclose(np.diff(stamps[-30:]), 0.1)  # every step is one block
    assert abs(stamps[-1] - (10.0 + 0.1 * (len(lateness) - 1)) - 0.002) < 1e-9  # from the least late arrival
    lost = clock.block(10.0 + 0.1 * len(lateness) + 1.0, 1600)  # a second of samples lost
    assert abs(lost - (10.0 + 0.1 * len(lateness) + 1.0)) < 1e-9


@requires_espeak
def test_a_delay_that_turns_out_wrong_leaves_the_rest_of_the_sound_unheard(answer):
    """The output stream stalls for 0.4 s just after the echo's delay was found, and the
    answer goes on that much later (beyond the filter's reach), as if the delay found were
    wrong: nothing cancels it, and hearing the answer's own words could make them act, so
    after its first second of cancelling the canceller hears none of the rest of that sound."""
    reference, mic, starts = loopback([(answer, 1.0, -0.1)], 2.0 + len(answer) / RATE)
    _, quiet, _ = loopback([], 0.4)
    cut, stall = int(1.1 * RATE), len(quiet)  # the delay is found on 0.6-1.1 s
    moved = np.concatenate([mic[:cut], quiet, mic[cut : len(mic) - stall]])
    echo = EchoCanceller(reference)
    out = cancel(echo, moved, starts)
    assert echo.delays == [pytest.approx(-0.1, abs=1 / RATE)]
    rest = slice(int(3.2 * RATE), int((1.0 + len(answer) / RATE) * RATE))
    assert level_db(out[rest]) < level_db(moved[rest]) - 30, (level_db(out[rest]), level_db(moved[rest]))  # the room tone alone


def underrun(answer: np.ndarray, gap: float, reported: bool) -> tuple[PlaybackReference, np.ndarray, float]:
    """An answer stamped 1 s into the microphone stream, its echo 0.1 s early, whose output ran
    dry 2 s in: the rest of its echo comes `gap` seconds later. `reported`: the speaker said
    so (PortAudio's write reports an underflow), as Speaker.play does."""
    reference, mic, starts = loopback([], 3.0 + gap + len(answer) / RATE)
    segment = reference.playing(answer, RATE, starts + 1.0)
    if reported:
        reference.resumed(segment, 2.0)
    first, split = int(0.9 * RATE), 2 * RATE
    echo = np.zeros(len(mic))
    echo[first : first + split] = answer[:split] * 0.7
    rest = first + split + int(gap * RATE)
    echo[rest : rest + len(answer) - split] = answer[split:] * 0.7
    return reference, np.clip(mic + echo, -32768, 32767).astype(np.int16), starts


@requires_espeak
def test_an_answer_that_plays_on_after_an_underrun_is_aligned_again_and_never_heard(answer):
    """On a busy machine the output can run dry mid-answer (seen in the virtual room with
    Piper): the rest of the answer plays later than stamped, and a filter fed the old timing
    leaves the answer's own words in. The speaker reports it; the canceller is deaf while it
    finds the new delay, then cancels as before, so nothing of the answer comes out."""
    reference, mic, starts = underrun(answer, 0.15, reported=True)
    echo = EchoCanceller(reference)
    out = cancel(echo, mic, starts)
    assert [round(d, 3) for d in echo.delays] == [-0.1, 0.05]
    room = level_db(mic[: RATE // 2])
    for i in range(int(2.9 * RATE), int((1.05 + len(answer) / RATE) * RATE) - RATE // 4, RATE // 4):  # from the gap to the end of the echo
        assert level_db(out[i : i + RATE // 4]) < max(level_db(mic[i : i + RATE // 4]) - 30, room + 3), i / RATE


@requires_espeak
def test_an_echo_that_moves_unnoticed_is_found_again_within_about_a_second(answer):
    """The same, 0.4 s later (beyond the filter's reach) and not reported: within about a
    second of the answer coming back uncancelled, the canceller looks for the delay again,
    takes back the weights it had before the move, and from then on nothing of the answer
    comes out."""
    reference, mic, starts = underrun(answer, 0.4, reported=False)
    echo = EchoCanceller(reference)
    out = cancel(echo, mic, starts)
    assert [round(d, 3) for d in echo.delays] == [-0.1, 0.3]
    room = level_db(mic[: RATE // 2])
    leaked = [i / RATE for i in range(int(2.9 * RATE), len(out) - RATE // 4, RATE // 4)
              if level_db(out[i : i + RATE // 4]) > max(level_db(mic[i : i + RATE // 4]) - 30, room + 3)]
    assert leaked and max(leaked) - 3.3 < 1.25, leaked  # it came back at 3.3 s; what got through, got through within 1.25 s
