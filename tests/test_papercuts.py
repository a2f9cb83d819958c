"""The first-night papercuts (issue 11, part 3), each through the real program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from audio_factory import write_wav
from conftest import assert_clean_error as shared_clean_error
from conftest import json_events, requires_flite, run_cli


def assert_clean_error(result, *needles: str) -> None:
    """The shared check, and nothing else on stderr: the error is the only line."""
    shared_clean_error(result, *needles)
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1, result.stderr


def test_phrases_list_into_a_closed_pipe_is_quiet():
    for extra in ([], ["--json"]):
        pipeline = subprocess.run(
            f"'{sys.executable}' -m voice_skill phrases list {' '.join(extra)} | head -2",
            shell=True, capture_output=True, text=True, env=os.environ.copy(), timeout=60,
        )
        assert pipeline.returncode == 0
        assert len(pipeline.stdout.splitlines()) == 2
        assert "Traceback" not in pipeline.stderr and "BrokenPipe" not in pipeline.stderr, pipeline.stderr


def test_input_rate_must_be_a_usable_rate():
    for bad in ("-5", "0", "100"):
        assert_clean_error(run_cli("run", "--input-rate", bad, "--no-speak"), "--input-rate", "16000")


def test_input_that_is_a_folder_or_an_empty_file(tmp_path):
    assert_clean_error(run_cli("run", "--input", str(tmp_path), "--no-speak"), "folder")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert_clean_error(run_cli("run", "--input", str(empty), "--no-speak"), "empty.wav", "empty")


def test_narrowband_input_is_warned_about(tmp_path):
    wav = write_wav(tmp_path / "phone.wav", np.zeros(8000, np.float32), rate=8000)
    result = run_cli("run", "--input", str(wav), "--no-speak")
    assert result.returncode == 0, result.stderr
    assert "narrowband" in result.stderr and "8000 Hz" in result.stderr


def test_a_misspelled_category_is_named_with_the_known_ones(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[content]\ncategories = ["memorys", "playful"]\n')
    result = run_cli("phrases", "list", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "memorys is not a category" in result.stderr and "memories" in result.stderr
    assert result.stdout and all(" playful " in line for line in result.stdout.splitlines())
    config.write_text('[content]\ncategories = ["memorys"]\n')
    for args in (("phrases", "list"), ("say", "tip", "--no-speak")):
        assert_clean_error(run_cli(*args, "--config", str(config)), "memorys", "the categories are", "memories")


SAY_FIELDS = {"event", "intent", "kind", "id", "level", "text", "to", "at"}  # docs/events.md
SPOKEN_FIELDS = {"seconds", "first_audio_ms", "volume", "ahead"}  # when it was spoken


def _say_then_run(tmp_path, audio_cache, config: Path, *extra: str) -> tuple[list[dict], list[dict]]:
    """The 'say' events of 'say question --json' and then of 'run --json' on a WAV in which a
    person asks for a question (one private state: the turn is shared)."""
    from audio_factory import flite, sequence

    audio, _ = sequence([("ask", flite("ask us a question", "kal16", audio_cache))])
    wav = write_wav(tmp_path / "ask.wav", audio)
    said = run_cli("say", "question", "--json", "--config", str(config), *extra, timeout=120)
    assert said.returncode == 0, said.stderr
    run = run_cli("run", "--input", str(wav), "--json", "--config", str(config), *extra, timeout=120)
    assert run.returncode == 0, run.stderr
    return [e for e in json_events(said.stdout) if e["event"] == "say"], [e for e in json_events(run.stdout) if e["event"] == "say"]


@requires_flite
def test_say_json_is_the_same_event_as_run(tmp_path, audio_cache):
    """Issue 23: 'say --json' had kind but no at or to, run's say event to but no kind. One
    event now (voice_skill/events.py), the same keys from both; 'to' follows [couple] names in
    turn across both commands; 'at' is 0.0 from 'say' (no audio stream: the moment it was asked)."""
    result = run_cli("say", "tip", "--no-speak", "--json")
    assert result.returncode == 0, result.stderr
    (event,) = json_events(result.stdout)
    assert set(event) == SAY_FIELDS, event
    assert event["event"] == "say" and event["intent"] == event["kind"] == "tip" and event["id"].startswith("t-") and event["text"]
    assert event["to"] is None and event["at"] == 0.0

    config = tmp_path / "config.toml"
    config.write_text('[couple]\nnames = ["Sam", "Alex"]\n')
    (said,), (answered,) = _say_then_run(tmp_path, audio_cache, config, "--no-speak")
    assert set(said) == set(answered) == SAY_FIELDS, (said, answered)
    assert said["kind"] == answered["kind"] == "question"
    assert (said["to"], answered["to"]) == ("Sam", "Alex")  # say took Sam's turn; run goes on with Alex
    assert said["at"] == 0.0 and answered["at"] > 1.0
    plain = run_cli("say", "question", "--no-speak", "--config", str(config))
    assert plain.stdout.startswith("Sam, "), plain.stdout  # what is said, the name first (Alex's turn came after run's)


@requires_flite
def test_say_json_is_the_same_event_as_run_when_spoken(tmp_path, audio_cache, room, private_dirs, monkeypatch):
    """Spoken (the virtual room's speaker), both add the same fields: seconds, first_audio_ms,
    volume and ahead."""
    for key, value in {**room.env, **private_dirs}.items():
        monkeypatch.setenv(key, value)  # run_cli's children: the room's PulseAudio and the private folders
    config = tmp_path / "config.toml"
    config.write_text("")
    (said,), (answered,) = _say_then_run(tmp_path, audio_cache, config, "--output-device", "pulse")
    assert set(said) == set(answered) == SAY_FIELDS | SPOKEN_FIELDS, (said, answered)
    assert said["seconds"] > 1.0 and said["first_audio_ms"] > 0 and said["ahead"] is False


def test_voice_reset_forgets_the_saved_voice(tmp_path):
    state = Path(os.environ["XDG_STATE_HOME"]) / "voice-skill" / "voice.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"rate": 200, "volume": 0.9}))
    result = run_cli("voice", "reset")
    assert result.returncode == 0, result.stderr
    assert not state.exists() and "forgot the saved voice" in result.stdout
    again = run_cli("voice", "reset")
    assert again.returncode == 0 and "no saved voice" in again.stdout


def test_input_rate_without_any_microphone_is_exit_2(tmp_path):
    """As plain 'run' does, instead of looping 'microphone lost ... trying again'."""
    plain = run_cli("run", "--no-speak", timeout=30)
    if plain.returncode != 2:
        import pytest

        pytest.skip("this machine has a microphone")
    result = run_cli("run", "--no-speak", "--input-rate", "48000", timeout=30)
    assert_clean_error(result, "microphone")


def _serve(folder: Path):
    """A local HTTP server over `folder` (a stand-in for the model host), in a thread."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _host_with_a_model(tmp_path: Path, name: str, damaged: bool = False):
    import hashlib
    import zipfile

    host = tmp_path / "host"
    host.mkdir()
    archive = host / f"{name}.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr(f"{name}/am/final.mdl", b"\0" * 200_000)
        bundle.writestr(f"{name}/conf/model.conf", "--sample-frequency=16000\n")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    if damaged:
        archive.write_bytes(archive.read_bytes()[:-10] + b"0123456789")
    server, url = _serve(host)
    entries = [{"name": name, "url": f"{url}/{name}.zip", "size": archive.stat().st_size, "size_text": "0.2MiB", "md5": md5, "obsolete": "false"}]
    (host / "model-list.json").write_text(json.dumps(entries))
    return server, f"{url}/model-list.json"


def test_model_download_checks_the_name_shows_the_size_and_cleans_up(tmp_path):
    name = "vosk-model-small-en-us-0.15"
    server, list_url = _host_with_a_model(tmp_path, name)
    try:
        target = tmp_path / "models"
        wrong = run_cli("model", "download", "vosk-model-small-en-us-0.16", "--dir", str(target), "--list-url", list_url)
        assert_clean_error(wrong, "no model by that name", "did you mean", name)
        assert not target.exists()  # nothing was created for a wrong name
        done = run_cli("model", "download", name, "--dir", str(target), "--list-url", list_url)
        assert done.returncode == 0, done.stderr
        assert (target / name / "am" / "final.mdl").is_file()
        assert sorted(p.name for p in target.iterdir()) == [name]  # no part file, no unpacking folder
        assert f"downloading {name} (0.2MiB)" in done.stderr and "(100 %)" in done.stderr
        assert "0.00B" not in done.stderr and done.stderr.count("downloading") == 1
    finally:
        server.shutdown()


def test_model_download_that_arrives_damaged_leaves_nothing(tmp_path):
    name = "vosk-model-small-en-us-0.15"
    server, list_url = _host_with_a_model(tmp_path, name, damaged=True)
    try:
        target = tmp_path / "models"
        result = run_cli("model", "download", name, "--dir", str(target), "--list-url", list_url)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert "damaged" in result.stderr.splitlines()[-1]
        assert not target.exists()
    finally:
        server.shutdown()


def test_verbose_shows_what_was_heard_when_nothing_fires(tmp_path, audio_cache):
    from audio_factory import flite, sequence

    from conftest import requires_flite  # noqa: F401 (flite is part of the test set-up)

    audio, _ = sequence([("ordinary", flite("the kettle is on the stove", "kal16", audio_cache))])
    wav = write_wav(tmp_path / "ordinary.wav", audio)
    quiet = run_cli("run", "--input", str(wav), "--no-speak")
    loud = run_cli("run", "--input", str(wav), "--no-speak", "-v")
    assert quiet.returncode == loud.returncode == 0
    lines = [line for line in loud.stderr.splitlines() if "utterance 1" in line]
    assert lines, loud.stderr
    import re

    words = re.findall(r"(?:heard|spotted) '([^']*)'", lines[0])
    assert words and all(words), lines[0]  # the words the search heard, never ''
    assert "heard ''" not in loud.stderr
    assert "utterance" not in quiet.stderr  # transcripts never at the default level


def test_an_unknown_voice_is_refused_at_start(tmp_path):
    """Issue 11: `--voice nosuchvoice` used to run on, answering with the chime only."""
    assert_clean_error(run_cli("say", "tip", "--voice", "nosuchvoice"), "'nosuchvoice'", "no such voice", "espeak-ng --voices")
    config = tmp_path / "config.toml"
    config.write_text('[speech]\nvoice = "nosuchvoice"\n')
    wav = tmp_path / "quiet.wav"
    write_wav(wav, np.zeros(16000, np.float32))
    assert_clean_error(run_cli("run", "--input", str(wav), "--config", str(config)), "[speech] voice", "no such voice")
    # A voice espeak-ng has passes the check (with no speaker here the run may stop there).
    known = run_cli("say", "tip", "--voice", "gmw/en-us")
    assert "no such voice" not in known.stderr, known.stderr


def test_check_on_a_machine_without_sound_devices_says_what_to_fix(private_dirs):
    """`voice-skill check` (issue 11): what the skill would use, and one fix per problem; exit 1."""
    result = run_cli("check", "--seconds", "1", timeout=60)
    if "microphone: " in result.stdout and "to fix" not in result.stdout:
        import pytest

        pytest.skip("this machine has a microphone and a speaker")
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "engine: PocketSphinx" in out and "voice: " in out
    assert f"no file at {Path(private_dirs['XDG_CONFIG_HOME']) / 'voice-skill' / 'config.toml'}" in out
    assert str(Path(private_dirs["XDG_STATE_HOME"]) / "voice-skill" / "phrase-bag.json") in out
    assert "to fix:" in out and "plug in a USB microphone" in out and "connect a speaker" in out
    assert "Traceback" not in result.stderr
    assert_clean_error(run_cli("check", "--seconds", "0"), "--seconds")


# ---------------------------------------------------------------- issue 23


def test_quiet_runs_and_checks_print_no_tensorflow_info(tmp_path):
    """TensorFlow Lite (the neural wake signal) writes "INFO: Created TensorFlow Lite XNNPACK
    delegate for CPU." to fd 2 from native code: it is held back at every level (-v logs it),
    and -q leaves only warnings and errors (here: none)."""
    wav = write_wav(tmp_path / "quiet.wav", np.zeros(32000, np.float32))
    quiet = run_cli("run", "--input", str(wav), "--no-speak", "-q")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == "", quiet.stderr
    plain = run_cli("run", "--input", str(wav), "--no-speak")
    assert "phonetic and neural wake signals" in plain.stderr, plain.stderr  # TensorFlow Lite did load
    assert "XNNPACK" not in plain.stderr and "INFO:" not in plain.stderr, plain.stderr
    loud = run_cli("run", "--input", str(wav), "--no-speak", "-v")
    assert "voice-skill: TensorFlow Lite: INFO: Created TensorFlow Lite XNNPACK delegate for CPU." in loud.stderr, loud.stderr
    check = run_cli("check", "--seconds", "0.5", "-q", timeout=60)
    assert "wake signals fused" in check.stdout, check.stdout  # the neural signal loaded
    assert "XNNPACK" not in check.stderr and "INFO:" not in check.stderr, check.stderr


def test_check_builds_the_wake_engine_as_run_does(tmp_path):
    """A trigger word the PocketSphinx dictionary lacks: 'run' refuses it, and 'check' lists
    run's own line as the fix (it used to describe the engine without building it)."""
    bundled = (Path(__file__).resolve().parent.parent / "phrases" / "triggers.toml").read_text("utf-8")
    triggers = tmp_path / "triggers.toml"
    triggers.write_text(bundled.replace('"ask us a question", "ask me', '"ask us a qwzrtx", "ask me'), "utf-8")
    config = tmp_path / "config.toml"
    config.write_text(f'[recognition]\ntriggers = "{triggers}"\n', "utf-8")
    wav = write_wav(tmp_path / "quiet.wav", np.zeros(16000, np.float32))
    run = run_cli("run", "--input", str(wav), "--no-speak", "--config", str(config))
    assert_clean_error(run, "qwzrtx", "not in the PocketSphinx dictionary")
    refused = run.stderr.strip().removeprefix("voice-skill: error: ")
    check = run_cli("check", "--seconds", "0.5", "--no-speak", "--config", str(config))
    assert check.returncode == 1 and "Traceback" not in check.stderr, check.stderr
    assert "engine: PocketSphinx (bundled English model): 'run' refuses to start" in check.stdout, check.stdout
    assert f"  - {refused}" in check.stdout.partition("to fix:")[2].splitlines(), check.stdout
    config.write_text("", "utf-8")  # the bundled triggers: nothing about the engine to fix
    fine = run_cli("check", "--seconds", "0.5", "--no-speak", "--config", str(config))
    assert "engine: PocketSphinx (bundled English model), wake signals" in fine.stdout, fine.stdout
    assert "PocketSphinx" not in fine.stdout.partition("to fix:")[2], fine.stdout
