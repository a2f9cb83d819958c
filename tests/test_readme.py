"""The README as a newcomer copies it: its two commands are what CI runs, its settings example works."""

from __future__ import annotations

import re

from audio_factory import flite, sequence, write_wav
from conftest import REPO, json_events, requires_flite, run_cli

README = (REPO / "README.md").read_text("utf-8")
INSTALL = "scripts/install && voice-skill run"
TEST = "scripts/install --test && scripts/test"


def readme_commands() -> list[str]:
    """The indented command lines of the README's "Install and run" section, comments dropped."""
    section = README.split("## Install and run", 1)[1].split("\n## ", 1)[0]
    return [line.split("#", 1)[0].strip() for line in section.splitlines() if line.startswith("    ")]


def settings_example() -> str:
    section = README.split("## Settings", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    return example


def test_the_readme_gives_the_two_commands():
    assert readme_commands() == [INSTALL, TEST]


def test_ci_runs_the_readmes_test_command_as_written():
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text("utf-8").splitlines()]
    assert TEST in ci_lines


def test_the_readmes_scripts_exist_and_run():
    for script in ("install", "test"):
        path = REPO / "scripts" / script
        assert path.is_file() and path.stat().st_mode & 0o111, path


def test_the_settings_example_works_when_copied_verbatim(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(settings_example(), "utf-8")
    result = run_cli("say", "question", "--no-speak", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr  # no unknown key
    (event,) = json_events(result.stdout)
    assert event["event"] == "say" and event["to"] in ("Sam", "Alex"), event


@requires_flite
def test_a_night_with_the_settings_example_is_answered(tmp_path, audio_cache):
    """With the example's settings, both phrases are heard and answered (nothing keeps it quiet)."""
    config = tmp_path / "config.toml"
    config.write_text(settings_example(), "utf-8")
    audio, _ = sequence([(text, flite(text, "kal16", audio_cache)) for text in ("ask us a question", "give us a tip")], gap=12.0)
    wav = write_wav(tmp_path / "night.wav", audio)
    result = run_cli("run", "--input", str(wav), "--no-speak", "--json", "--config", str(config), timeout=300)
    assert result.returncode == 0, result.stderr
    said = [e["intent"] for e in json_events(result.stdout) if e["event"] == "say"]
    assert said == ["question", "tip"], result.stdout
