"""Bad input: one clear line on stderr naming the problem, exit status 2, no traceback, nothing lost.

Covers --input files (what can be converted is, the rest is refused), config files, phrase
packs, and randomly corrupted WAV files through WavSource and through the real program.
"""

from __future__ import annotations

import io
import json
import random
import struct
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audio_factory import flite, have, sequence, write_wav
from conftest import json_events, requires_flite, run_cli
from voice_skill.audio import WavSource
from voice_skill.errors import UserError

requires_sox = pytest.mark.skipif(not have("sox"), reason="sox is not installed (apt-get install sox)")

STATE = {"version": 1, "bags": {"question": {"order": ["q-nothing-01"], "position": 1}}, "last": {"question": "q-nothing-01"}}


@pytest.fixture
def state_file(private_dirs) -> Path:
    """A phrase-bag state file that a refused run must leave exactly as it was."""
    path = Path(private_dirs["XDG_STATE_HOME"]) / "voice-skill" / "phrase-bag.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(STATE))
    return path


def assert_refused(result: subprocess.CompletedProcess, *needles: str, state: Path | None = None) -> str:
    """Exit 2, exactly one stderr line (the error), naming what is wrong; no events; state untouched."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("voice-skill: error:")]
    others = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("voice-skill: error:") and "PocketSphinx" not in ln]
    assert len(errors) == 1 and not others, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert not [e for e in json_events(result.stdout) if e["event"] in ("wake", "say")]
    if state is not None:
        assert json.loads(state.read_text()) == STATE
    return errors[0]


# ---------------------------------------------------------------- --input files


@pytest.fixture(scope="module")
def ask_wav(tmp_path_factory, audio_cache) -> Path:
    if not have("flite"):
        pytest.skip("flite is not installed (apt-get install flite)")
    audio, _ = sequence([("ask us a question", flite("ask us a question", "kal16", audio_cache))], gap=1.0)
    return write_wav(tmp_path_factory.mktemp("ask") / "ask-16k.wav", audio)


def sox(source: Path, target: Path, *options: str) -> Path:
    subprocess.run(["sox", str(source), *options, str(target)], check=True, capture_output=True)
    return target


CONVERTIBLE = {
    "8-bit": ("-b", "8", "-e", "unsigned-integer"),
    "24-bit": ("-b", "24"),
    "float-32": ("-b", "32", "-e", "floating-point"),
    "96-kHz": ("-r", "96000"),
    "6-channels": ("-c", "6"),
}


@requires_flite
@requires_sox
@pytest.mark.parametrize("name", CONVERTIBLE)
def test_convertible_wav_still_fires(name, ask_wav, tmp_path):
    wav = sox(ask_wav, tmp_path / f"ask-{name}.wav", *CONVERTIBLE[name])
    result = run_cli("run", "--input", str(wav), "--no-speak", "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert [e["intent"] for e in json_events(result.stdout) if e["event"] == "wake"] == ["question"], result.stdout


@requires_flite
@requires_sox
def test_8_khz_wav_is_converted_and_runs(ask_wav, tmp_path):
    """Telephone-band audio is read and resampled; whether it fires depends on the recognizer."""
    wav = sox(ask_wav, tmp_path / "ask-8k.wav", "-r", "8000")
    result = run_cli("run", "--input", str(wav), "--no-speak", "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    events = json_events(result.stdout)
    assert events[0]["event"] == "listening" and events[-1]["event"] == "done"


def good_wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(buf, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


REFUSED = {
    "not-a-wav": (lambda: b"these are my notes, not audio\n", "not a readable WAV"),
    "empty": (lambda: b"", "the file is empty"),
    "header-only": (lambda: good_wav_bytes()[:44], "no audio"),
    "cut-mid-data": (lambda: good_wav_bytes()[: 44 + 16000], "cut short"),
    "random-bytes": (lambda: random.Random(7).randbytes(3000), "not a readable WAV"),
    "rate-1-hz": (lambda: riff_header(1, 1, 16, 1, None, bytes(4000)), "1 Hz"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_unusable_wav_is_refused_naming_the_file(name, tmp_path, state_file):
    make, reason = REFUSED[name]
    wav = tmp_path / f"{name}.wav"
    wav.write_bytes(make())
    assert_refused(run_cli("run", "--input", str(wav), "--no-speak", "--json"), f"--input {wav}", reason, state=state_file)


def test_streamed_wav_of_unknown_length_is_read(tmp_path):
    """A WAV written to a pipe says 0xFFFFFFFF or 0x7FFFFFFF bytes of data: not a cut, read it all."""
    good = good_wav_bytes(0.5)
    for size in (0xFFFFFFFF, 0x7FFFFFFF):
        wav = tmp_path / f"streamed-{size:x}.wav"
        wav.write_bytes(good[:4] + struct.pack("<I", size) + good[8:40] + struct.pack("<I", size) + good[44:])
        assert read_all(wav) == 2 * 8000


def test_float_wav_with_nan_and_infinity_reads_quietly(tmp_path):
    wav = tmp_path / "nan.wav"
    wav.write_bytes(riff_header(16000, 1, 32, 3, None, np.array([np.nan, np.inf, -np.inf, 0.5] * 400, np.float32).tobytes()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_all(wav) == 2 * 1600


def test_missing_or_folder_input_is_refused(tmp_path):
    assert_refused(run_cli("run", "--input", str(tmp_path / "nope.wav"), "--no-speak"), str(tmp_path / "nope.wav"), "no such file")
    assert_refused(run_cli("run", "--input", str(tmp_path), "--no-speak"), str(tmp_path))


# ---------------------------------------------------------------- config files


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_unknown_config_keys_warn_and_go_on(tmp_path):
    config = write_config(tmp_path, '[speech]\nrate = 120\npitch = 3\n\n[colour]\nnight = "blue"\n')
    result = run_cli("say", "--no-speak", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip()) > 10
    assert "Traceback" not in result.stderr and "error" not in result.stderr
    warnings_ = result.stderr.strip().splitlines()
    assert any(str(config) in ln and "pitch" in ln for ln in warnings_), result.stderr
    assert any(str(config) in ln and "colour" in ln for ln in warnings_), result.stderr


BAD_CONFIGS = {
    "rate-text": ('[speech]\nrate = "fast"\n', "rate"),
    "rate-fraction": ("[speech]\nrate = 140.5\n", "rate"),
    "rate-too-slow": ("[speech]\nrate = 79\n", "rate"),
    "rate-too-fast": ("[speech]\nrate = 301\n", "rate"),
    "volume-text": ('[speech]\nvolume = "loud"\n', "volume"),
    "volume-negative": ("[speech]\nvolume = -0.1\n", "volume"),
    "volume-too-loud": ("[speech]\nvolume = 1.01\n", "volume"),
    "volume-bool": ("[speech]\nvolume = true\n", "volume"),
    "sexual-text": ('[content]\nsexual = "yes"\n', "sexual"),
    "levels-text": ('[content]\nlevels = "light"\n', "levels"),
    "levels-unknown": ('[content]\nlevels = ["spicy"]\n', "levels"),
    "engine-unknown": ('[recognition]\nengine = "whisper"\n', "engine"),
    "window-zero": ("[skill]\nfollow_up_window = 0\n", "follow_up_window"),
    "ready-sound-text": ("[skill]\nready_sound = \"yes\"\n", "ready_sound"),
    "morning-not-a-time": ('[skill]\nmorning = "6am"\n', "morning"),
    "morning-25-hours": ('[skill]\nmorning = "25:00"\n', "morning"),
    "morning-number": ("[skill]\nmorning = 6\n", "morning"),
    "quiet-from-not-a-time": ('[skill]\nquiet_from = "midnight"\n', "quiet_from"),
    "quiet-hours-text": ('[skill]\nquiet_hours = "eight"\n', "quiet_hours"),
    "quiet-hours-too-many": ("[skill]\nquiet_hours = 20\n", "quiet_hours"),
    "night-volume-text": ('[speech]\nnight_volume = "soft"\n', "night_volume"),
    "night-volume-too-loud": ("[speech]\nnight_volume = 2\n", "night_volume"),
    "night-from-not-a-time": ('[speech]\nnight_from = "11pm"\n', "night_from"),
    "names-not-a-list": ('[couple]\nnames = "Sam and Alex"\n', "names"),
    "names-one": ('[couple]\nnames = ["Sam"]\n', "names"),
    "names-a-number": ('[couple]\nnames = ["Sam", 2]\n', "names"),
    "names-empty": ('[couple]\nnames = ["Sam", ""]\n', "names"),
    "device-bool": ("[audio]\ninput_device = true\n", "input_device"),
    "echo-cancellation-text": ('[audio]\necho_cancellation = "yes"\n', "echo_cancellation"),
    "section-not-table": ("speech = 3\n", "speech"),
    "not-toml": ("[speech\nrate = 140\n", "not valid TOML"),
}


@pytest.mark.parametrize("name", BAD_CONFIGS)
def test_bad_config_value_is_refused_naming_file_and_key(name, tmp_path, state_file):
    text, key = BAD_CONFIGS[name]
    config = write_config(tmp_path, text)
    assert_refused(run_cli("say", "--no-speak", "--config", str(config)), str(config), key, state=state_file)


def test_config_that_is_not_utf8_is_refused(tmp_path):
    config = tmp_path / "config.toml"
    config.write_bytes(b'[speech]\nvoice = "caf\xe9"\n')
    assert_refused(run_cli("say", "--no-speak", "--config", str(config)), str(config), "UTF-8")


def test_unknown_microphone_in_config_is_refused_naming_the_option(tmp_path, state_file):
    config = write_config(tmp_path, '[audio]\ninput_device = "No Such Microphone 42"\n')
    line = assert_refused(run_cli("run", "--no-speak", "--config", str(config), timeout=60), "No Such Microphone 42", state=state_file)
    assert "input-device" in line or "input_device" in line, line


def test_unknown_speaker_in_config_is_refused_naming_the_option(tmp_path):
    config = write_config(tmp_path, '[audio]\noutput_device = "No Such Speaker 42"\n')
    line = assert_refused(run_cli("say", "--config", str(config), timeout=60), "No Such Speaker 42")
    assert "output-device" in line or "output_device" in line, line


def test_say_that_fails_on_the_speaker_uses_up_no_phrase(tmp_path, state_file):
    result = run_cli("say", "--output-device", "No Such Speaker 42", timeout=60)
    assert_refused(result, "--output-device", state=state_file)


def test_device_index_out_of_range_is_refused(tmp_path):
    config = write_config(tmp_path, "[audio]\ninput_device = 999\n")
    line = assert_refused(run_cli("run", "--no-speak", "--config", str(config), timeout=60), "999")
    assert "input-device" in line or "input_device" in line, line


# ---------------------------------------------------------------- phrase packs

PACK_HEAD = '[pack]\nkind = "tip"\ncategory = "mine"\n'


def phrase(pid: str, text: str) -> str:
    return f'\n[[phrase]]\nid = "{pid}"\nlevel = "light"\ntext = "{text}"\n'


def bundled_id() -> str:
    from voice_skill.phrases import bundled_phrases_dir, check_packs

    phrases, problems = check_packs([bundled_phrases_dir()])
    assert not problems
    return phrases[0].id


BAD_PACKS = {
    # name: (file bytes, line of the problem, words in the message)
    "bad-encoding": ((PACK_HEAD + phrase("m-1", "Hold hands.") + phrase("m-2", "Caf\udce9 tonight.")).encode("utf-8", "surrogateescape"), 13, "UTF-8"),
    "duplicate-id": ((PACK_HEAD + phrase("m-1", "Hold hands.") + phrase("m-1", "Hold hands again.")).encode(), 10, "duplicate id m-1"),
    "empty-text": ((PACK_HEAD + phrase("m-1", "Hold hands.") + phrase("m-2", "   ")).encode(), 10, "empty text"),
}


@pytest.mark.parametrize("name", BAD_PACKS)
def test_phrases_check_names_file_and_line(name, tmp_path):
    data, line, words = BAD_PACKS[name]
    pack = tmp_path / f"{name}.toml"
    pack.write_bytes(data)
    result = run_cli("phrases", "check", str(pack))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [ln for ln in result.stderr.strip().splitlines() if ln.startswith(f"{pack}:{line}: ")]
    assert words in result.stderr


@pytest.mark.parametrize("name", BAD_PACKS)
def test_bad_user_pack_stops_say_cleanly(name, private_dirs, state_file):
    data, line, words = BAD_PACKS[name]
    pack = Path(private_dirs["XDG_CONFIG_HOME"]) / "voice-skill" / "phrases" / f"{name}.toml"
    pack.parent.mkdir(parents=True)
    pack.write_bytes(data)
    assert_refused(run_cli("say", "--no-speak"), f"{pack}:{line}:", words, state=state_file)


def test_user_pack_reusing_a_bundled_id_is_named(private_dirs, state_file):
    taken = bundled_id()
    pack = Path(private_dirs["XDG_CONFIG_HOME"]) / "voice-skill" / "phrases" / "mine.toml"
    pack.parent.mkdir(parents=True)
    pack.write_text(PACK_HEAD + phrase(taken, "Hold hands."))
    assert_refused(run_cli("say", "--no-speak"), f"{pack}:5:", f"duplicate id {taken}", state=state_file)
    result = run_cli("phrases", "check")
    assert result.returncode == 2 and f"{pack}:5: duplicate id {taken}" in result.stderr


# ---------------------------------------------------------------- corrupted WAV files

def stereo_float_wav_bytes() -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, np.full((1200, 2), 0.1, np.float32), 8000, format="WAV", subtype="FLOAT")
    return buf.getvalue()


BASE_WAVS = {"pcm16": good_wav_bytes(0.15), "stereo-float": stereo_float_wav_bytes()}


def riff_header(rate: int, channels: int, bits: int, tag: int, data_len: int | None, payload: bytes) -> bytes:
    align = (channels * bits // 8) & 0xFFFF
    fmt = struct.pack("<HHIIHH", tag & 0xFFFF, channels & 0xFFFF, rate & 0xFFFFFFFF, (rate * align) & 0xFFFFFFFF, align, bits & 0xFFFF)
    size = len(payload) if data_len is None else data_len
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size & 0xFFFFFFFF) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def corrupt(rng: random.Random, kind: str) -> bytes:
    """One damaged file: flipped, cut or inserted bytes in a valid WAV, or a made-up header."""
    data = bytearray(BASE_WAVS[rng.choice(sorted(BASE_WAVS))])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(64) if rng.random() < 0.7 else rng.randrange(len(data))
            data[at] = rng.randrange(256)
    elif kind == "truncate":
        del data[rng.randrange(len(data)) :]
    elif kind == "insert":
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.randbytes(rng.randint(1, 40))
    else:
        rate = rng.choice([0, 1, 7, 3999, 8000, 44100, 768001, 2**31 - 1, 2**32 - 1, rng.randrange(2**32)])
        payload = rng.randbytes(rng.randrange(0, 4000))
        data = bytearray(
            riff_header(rate, rng.choice([0, 1, 2, 6, 255, 1024, 65535]), rng.choice([0, 1, 7, 8, 16, 24, 32, 64]),
                        rng.choice([0, 1, 2, 3, 6, 7, 0x11, 0xFFFE, rng.randrange(65536)]), rng.choice([None, 0, 1, 2**32 - 1, rng.randrange(2**32)]), payload)
        )
    return bytes(data)


KINDS = ("flip", "truncate", "insert", "header")


def read_all(path: Path) -> int:
    source = WavSource(path)
    return sum(len(chunk.pcm) for chunk in source.chunks())


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_corrupted_wavs_raise_only_user_errors(fuzz_dir):
    pytest.importorskip("hypothesis", reason="hypothesis is not installed (add it to the [test] extra)")
    from hypothesis import HealthCheck, given, settings, strategies as st

    @settings(max_examples=400, deadline=2000, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(KINDS), extra=st.binary(max_size=64))
    def check(seed, kind, extra):
        data = corrupt(random.Random(seed), kind)
        if extra and kind == "flip":
            data = data[:12] + extra + data[12 + len(extra):]  # hypothesis-shrinkable header bytes
        path = fuzz_dir / "damaged.wav"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a numpy warning would be a stray stderr line
            try:
                read_all(path)
            except UserError as exc:
                message = str(exc)
                assert "\n" not in message and str(path) in message, message

    check()


def test_corrupted_wavs_through_the_program(tmp_path):
    rng = random.Random(20240611)
    for i, kind in enumerate([*KINDS, "header"]):
        wav = tmp_path / f"damaged-{i}-{kind}.wav"
        wav.write_bytes(corrupt(rng, kind))
        result = run_cli("run", "--input", str(wav), "--no-speak", "--json", timeout=60)
        assert result.returncode in (0, 2), (kind, result.returncode, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode == 2:
            errors = [ln for ln in result.stderr.splitlines() if ln.startswith("voice-skill: error:")]
            assert len(errors) == 1 and str(wav) in errors[0], result.stderr

