from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from audio_factory import have  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def audio_cache(tmp_path_factory) -> Path:
    """Generated speech, made once per test session."""
    return tmp_path_factory.mktemp("speech-cache")


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch) -> dict[str, str]:
    """Each test gets its own config, state and data folders (never the user's)."""
    dirs = {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    for key, value in dirs.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("VOICE_SKILL_CONFIG", raising=False)
    return dirs


requires_flite = pytest.mark.skipif(not have("flite"), reason="flite is not installed (apt-get install flite)")
requires_espeak = pytest.mark.skipif(not have("espeak-ng"), reason="espeak-ng is not installed (apt-get install espeak-ng)")


def _piper_missing() -> str | None:
    from voice_skill.piper_voice import default_voice, piper_installed

    if not piper_installed() or default_voice() is None:
        return "Piper and its voice are not installed (scripts/install --test)"
    return None


requires_piper = pytest.mark.skipif(_piper_missing() is not None, reason=_piper_missing() or "")
# The speech engines, for tests that run with each: pyttsx3 (espeak-ng) and Piper (joe).
SPEECH_ENGINES = [pytest.param("pyttsx3", id="pyttsx3"), pytest.param("piper", id="piper", marks=requires_piper)]


def run_cli(*args: str, timeout: float = 120, input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real program, as a user runs it (`env`: variables added to the environment)."""
    return subprocess.run(
        [sys.executable, "-m", "voice_skill", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        input=input,
    )


def assert_clean_error(result, *needles: str) -> None:
    """Exit status 2, one "voice-skill: error:" line holding every needle, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("voice-skill: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def json_events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="session")
def room(tmp_path_factory):
    """The virtual bedroom (a private PulseAudio server), shared by the live tests."""
    from room import VirtualRoom, room_tools_missing

    missing = room_tools_missing()
    if missing:
        pytest.skip(missing)
    room = VirtualRoom(tmp_path_factory.mktemp("room"))
    try:
        room.start()
    except RuntimeError as exc:
        pytest.skip(f"the virtual room (PulseAudio) cannot start here: {exc}")
    yield room
    room.stop()
