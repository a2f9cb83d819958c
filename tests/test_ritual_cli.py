"""The bedtime ritual through the real program: flite speech, the real engine, run --input."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from audio_factory import RATE, Span, flite, sequence, silence, write_wav
from conftest import requires_flite, run_cli

pytestmark = [requires_flite]

# In file mode with --no-speak an answer takes no time: the follow-up window (8 s) opens when
# the command that asked for it is heard, so each command follows the one before at a 2.5 s gap.
GAP = 2.5


def session(tmp_path: Path, cache: Path, voice: str, said: list[str], name: str = "night.wav") -> Path:
    audio, _ = sequence([(text, flite(text, voice, cache)) for text in said], gap=GAP)
    return write_wav(tmp_path / name, audio)


def run_events(wav: Path, *extra: str) -> list[dict]:
    result = run_cli("run", "--input", str(wav), "--no-speak", "--json", *extra)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def phrase_levels() -> dict[str, str]:
    from voice_skill.phrases import bundled_phrases_dir, load_library

    return {p.id: p.level for p in load_library([bundled_phrases_dir()])}


def test_deeper_skip_favourite_and_goodnight_in_one_night(tmp_path, audio_cache, private_dirs):
    said = ["ask us a question", "go deeper", "skip that one", "i like that one", "goodnight", "ask us a question"]
    events = run_events(session(tmp_path, audio_cache, "kal16", said))
    says = [e for e in events if e["event"] == "say"]
    assert [e["intent"] for e in says] == ["question", "deeper", "skip"], events
    levels = phrase_levels()
    assert all(levels[e["id"]] == e["level"] for e in says)  # the event's level is the phrase's
    assert [e["level"] for e in says[1:]] == ["deeper", "deeper"]  # deeper sticks after a skip
    assert len({e["id"] for e in says}) == 3

    skip = next(e for e in events if e["event"] == "skip")
    favorite = next(e for e in events if e["event"] == "favorite")
    assert skip["id"] == says[1]["id"] and favorite["id"] == says[2]["id"]
    goodnight = next(e for e in events if e["event"] == "goodnight")
    assert goodnight["quiet_until"].endswith("06:00") or "T06:00" in goodnight["quiet_until"]
    ignored = [e for e in events if e["event"] == "ignored"]
    assert [(e["intent"], e["reason"]) for e in ignored] == [("question", "quiet")], events

    # Remembered as ids and dates only, and listed as a favourite.
    state = json.loads((Path(private_dirs["XDG_STATE_HOME"]) / "voice-skill" / "ritual.json").read_text())
    assert state["skipped"] == {skip["id"]: date.today().isoformat()} or list(state["skipped"]) == [skip["id"]]
    assert state["favorites"] == [favorite["id"]]
    listed = run_cli("phrases", "list", "--favorites", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [favorite["id"]]


def no_moments(tmp_path: Path) -> str:
    """A config without the timed moments (on by default): a tip may not be one, which would
    keep the skill quiet through the phrases after it."""
    config = tmp_path / "no-moments.toml"
    config.write_text("[content]\nmoments = false\n")
    return str(config)


def test_something_lighter_after_something_deeper(tmp_path, audio_cache):
    said = ["give me a tip", "something deeper", "lighter please"]
    events = run_events(session(tmp_path, audio_cache, "slt", said), "--config", no_moments(tmp_path))
    says = [e for e in events if e["event"] == "say"]
    assert [(e["intent"], e["level"]) for e in says][1:] == [("deeper", "deeper"), ("lighter", "light")], events
    assert all(e["id"].startswith("t-") for e in says)


def test_not_that_one_and_good_night_in_another_voice(tmp_path, audio_cache):
    said = ["give us a tip", "not that one", "good night", "give us a tip"]
    events = run_events(session(tmp_path, audio_cache, "rms", said), "--config", no_moments(tmp_path))
    assert [e["intent"] for e in events if e["event"] == "say"] == ["tip", "skip"], events
    assert [e["event"] for e in events if e["event"] in ("skip", "goodnight")] == ["skip", "goodnight"]
    assert [(e["intent"], e["reason"]) for e in events if e["event"] == "ignored"] == [("tip", "quiet")]


def test_ritual_commands_outside_the_window_change_nothing(tmp_path, audio_cache, private_dirs):
    said = ["go deeper", "skip that one", "i like that one", "goodnight", "ask us a question"]
    events = run_events(session(tmp_path, audio_cache, "awb", said))
    ignored = [(e["intent"], e["reason"]) for e in events if e["event"] == "ignored"]
    assert ("goodnight", "no follow-up window") in ignored and ("skip", "no follow-up window") in ignored, events
    says = [e for e in events if e["event"] == "say"]
    assert [e["intent"] for e in says] == ["question"]  # not quiet: the goodnight was not acted on
    assert not (Path(private_dirs["XDG_STATE_HOME"]) / "voice-skill" / "ritual.json").exists() or json.loads(
        (Path(private_dirs["XDG_STATE_HOME"]) / "voice-skill" / "ritual.json").read_text()
    )["favorites"] == []


TIMED_SECONDS = 20


@pytest.fixture()
def only_timed_tips(private_dirs) -> Path:
    """A user pack of timed tips (a light and a deeper one, both 20 s) and a config that turns on
    only them and the bundled "us" questions, so that any tip drawn is a timed one."""
    folder = Path(private_dirs["XDG_CONFIG_HOME"]) / "voice-skill"
    (folder / "phrases").mkdir(parents=True)
    body = "".join(
        f'\n[[phrase]]\nid = "test-timed-{level}"\nlevel = "{level}"\nseconds = {TIMED_SECONDS}\ntext = "Hold each other close until the chime."\n'
        for level in ("light", "deeper")
    )
    (folder / "phrases" / "timed.toml").write_text(f'[pack]\nkind = "tip"\ncategory = "testmoments"\n{body}')
    config = folder / "config.toml"
    config.write_text('[content]\ncategories = ["us", "testmoments"]\n')
    return config


def timeline(items: list[tuple[float, str]], voice: str, cache: Path) -> tuple[np.ndarray, list[Span]]:
    """Each text said `pause` seconds after the one before ends (after a second of silence)."""
    parts, spans, t = [silence(1.0)], [], 1.0
    for pause, text in items:
        speech = flite(text, voice, cache)
        parts += [silence(pause), speech]
        spans.append(Span(text, t + pause, t + pause + len(speech) / RATE))
        t += pause + len(speech) / RATE
    parts.append(silence(2.0))
    return np.concatenate(parts), spans


def test_a_night_wake_deeper_skip_favourite_timed_tip_and_goodnight(tmp_path, audio_cache, only_timed_tips, private_dirs):
    """The issue's "done means": one WAV, each command inside its window, the right events."""
    first = ["ask us a question", "go deeper", "skip that one", "i like that one", "give us a tip", "ask us a question"]
    items = [(0.0 if i == 0 else GAP, text) for i, text in enumerate(first)]
    _, spans = timeline(items, "kal16", audio_cache)
    # goodnight: a second after the timed moment ends (it starts when the tip is heard, about
    # 0.2 s after the phrase ends), well inside the window that "time's up" opens.
    pause = spans[4].end + 0.3 + TIMED_SECONDS + 1.0 - spans[5].end
    audio, _ = timeline(items + [(pause, "goodnight"), (GAP, "ask us a question")], "kal16", audio_cache)
    wav = write_wav(tmp_path / "night.wav", audio)
    events = run_events(wav)

    kinds = [e["event"] for e in events if e["event"] not in ("listening", "done", "wake")]
    assert kinds == ["say", "say", "skip", "say", "favorite", "say", "timer", "ignored", "timer_done", "goodnight", "ignored"], events
    says = [e for e in events if e["event"] == "say"]
    assert [(e["intent"], e["level"]) for e in says] == [("question", says[0]["level"]), ("deeper", "deeper"), ("skip", "deeper"), ("tip", "deeper")]
    assert says[3]["id"] == "test-timed-deeper"
    timer = next(e for e in events if e["event"] == "timer")
    done = next(e for e in events if e["event"] == "timer_done")
    assert timer["seconds"] == TIMED_SECONDS and timer["id"] == says[3]["id"] and not done["stopped"]
    assert TIMED_SECONDS <= done["at"] - timer["at"] <= TIMED_SECONDS + 0.2
    ignored = [(e["intent"], e["reason"]) for e in events if e["event"] == "ignored"]
    assert ignored == [("question", "timer"), ("question", "quiet")]
    favorite = next(e for e in events if e["event"] == "favorite")
    assert favorite["id"] == says[2]["id"]


def test_stop_during_a_timed_moment(tmp_path, audio_cache, only_timed_tips):
    audio, _ = timeline([(0.0, "give me a tip"), (GAP, "stop"), (GAP, "another one")], "awb", audio_cache)
    events = run_events(write_wav(tmp_path / "stop.wav", audio))
    kinds = [e["event"] for e in events if e["event"] in ("say", "timer", "timer_done", "ignored")]
    assert kinds == ["say", "timer", "timer_done", "ignored"], events
    assert next(e for e in events if e["event"] == "timer_done")["stopped"] is True
    assert [(e["intent"], e["reason"]) for e in events if e["event"] == "ignored"] == [("another", "no follow-up window")]


def test_questions_taken_in_turns_across_nights(tmp_path, audio_cache, private_dirs):
    config = tmp_path / "config.toml"
    config.write_text('[couple]\nnames = ["Sam", "Alex"]\n')
    night = session(tmp_path, audio_cache, "kal16", ["ask us a question", "another one", "skip that one"])
    first = [e for e in run_events(night, "--config", str(config)) if e["event"] == "say"]
    assert [(e["intent"], e["to"]) for e in first] == [("question", "Sam"), ("another", "Alex"), ("skip", "Alex")], first
    second = [e for e in run_events(night, "--config", str(config)) if e["event"] == "say"]
    assert [e["to"] for e in second] == ["Sam", "Alex", "Alex"]  # the next night goes on where this one ended
    state = json.loads((Path(private_dirs["XDG_STATE_HOME"]) / "voice-skill" / "ritual.json").read_text())
    assert state["next_turn"] == "Sam"
    plain = [e for e in run_events(night) if e["event"] == "say"]  # without names nothing is addressed
    assert plain and all(e["to"] is None for e in plain)


def test_timed_moments_are_on_unless_turned_off(tmp_path):
    """Issue 23: on by default, off with [content] moments = false. Listed categories are
    obeyed: the moments come with them only if named there or with moments = true."""
    config = tmp_path / "config.toml"

    def categories(settings: str | None = None) -> set[str]:
        extra = ()
        if settings is not None:
            config.write_text(settings)
            extra = ("--config", str(config))
        result = run_cli("phrases", "list", "--json", *extra)
        assert result.returncode == 0, result.stderr
        return {json.loads(line)["category"] for line in result.stdout.splitlines()}

    assert "moments" in categories()
    assert "moments" not in categories("[content]\nmoments = false\n")
    assert categories('[content]\ncategories = ["us"]\n') == {"us"}
    assert categories('[content]\ncategories = ["us"]\nmoments = true\n') == {"us", "moments"}
    assert categories('[content]\ncategories = ["us", "moments"]\n') == {"us", "moments"}
    assert categories('[content]\ncategories = ["us", "moments"]\nmoments = false\n') == {"us"}


@requires_flite
def test_a_tip_by_default_can_be_a_timed_moment(tmp_path, audio_cache):
    """With the default settings the timed moments are among the tips: with only them left in
    the bag (every other tip skipped today), "give us a tip" starts a timer; with moments =
    false it does not."""
    from voice_skill.phrases import bundled_phrases_dir, load_library

    tips = [p for p in load_library([bundled_phrases_dir()]) if p.kind == "tip" and p.category not in ("sexual", "moments")]
    state = Path(os.environ["XDG_STATE_HOME"]) / "voice-skill"
    state.mkdir(parents=True, exist_ok=True)
    (state / "ritual.json").write_text(json.dumps({"version": 1, "skipped": {p.id: date.today().isoformat() for p in tips}, "favorites": []}))
    events = run_events(session(tmp_path, audio_cache, "kal16", ["give us a tip"]))
    (said,) = [e for e in events if e["event"] == "say"]
    assert said["id"].startswith("t-moments-"), events
    assert [e["id"] for e in events if e["event"] == "timer"] == [said["id"]], events
    off = run_events(session(tmp_path, audio_cache, "kal16", ["give us a tip"], name="off.wav"), "--config", no_moments(tmp_path))
    assert not [e for e in off if e["event"] == "timer"], off
