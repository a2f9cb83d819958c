"""The judge (voice_skill/recognizers/judging.py): Whisper tiny.en through CTranslate2, on
real speech (flite voices, never used in tuning), with the real model as installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from audio_factory import flite, silence
from conftest import requires_flite
from voice_skill.recognizers import judging

WAKE = ("ask us a question", "ask me a question", "give us a question", "give us a tip", "tell us a tip", "give me a tip")


def test_log_mel_has_whisper_shape_and_scale():
    t = np.arange(16000 * 2) / 16000
    tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    features = judging.log_mel(tone)
    assert features.shape == (80, 200)  # 100 frames a second, the last dropped as Whisper does
    assert features.max() <= 1.6 and features.max() - features.min() <= 2.0 + 1e-6  # clamped 8 (log10) below the peak, /4
    band = int(np.argmax(features[:, 100]))
    assert 5 <= band <= 20  # 440 Hz sits in the low mel bands


def test_mel_filters_match_slaney_normalisation():
    filters = judging.mel_filters()
    assert filters.shape == (80, 201)
    assert (filters >= 0).all()
    assert all(row.any() for row in filters)  # no empty band at 16 kHz with a 400-point FFT


def test_collapse_repeats_drops_greedy_loops():
    words = "Ask us a question. Ask us a question. Ask us a".split()
    assert judging.collapse_repeats(words) == "Ask us a question. Ask us a".split()
    assert judging.collapse_repeats("give me a touch, give me a touch, give me".split()) == "give me a touch, give me".split()
    assert judging.collapse_repeats("no no".split()) == ["no"]
    assert judging.collapse_repeats("okay we are in bed now".split()) == "okay we are in bed now".split()


def test_written_forms():
    assert judging.written_forms("ask us a question") == (" Ask us a question.", " ask us a question")


def _copy_model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(judging.model_dir(), folder)
    return folder


def test_the_installed_model_is_the_checked_one():
    judging.check_model(judging.model_dir())


def test_a_changed_model_file_is_refused(tmp_path):
    folder = _copy_model(tmp_path)
    data = bytearray((folder / "tokenizer.json").read_bytes())
    data[1000] ^= 1
    (folder / "tokenizer.json").write_bytes(bytes(data))
    with pytest.raises(judging.JudgeDamaged, match="tokenizer.json.*SHA-256"):
        judging.check_model(folder)


def test_a_missing_or_cut_model_file_is_refused(tmp_path):
    folder = _copy_model(tmp_path)
    (folder / "vocabulary.txt").unlink()
    with pytest.raises(judging.JudgeDamaged, match="no vocabulary.txt"):
        judging.check_model(folder)
    with open(folder / "model.bin", "r+b") as file:
        file.truncate(1000)
    shutil.copy(judging.model_dir() / "vocabulary.txt", folder / "vocabulary.txt")
    with pytest.raises(judging.JudgeDamaged, match="model.bin is 1000 bytes"):
        judging.check_model(folder)


def test_load_judge_checks_the_folder_it_is_pointed_at(tmp_path, monkeypatch):
    folder = _copy_model(tmp_path)
    (folder / "config.json").write_text("{}")
    monkeypatch.setenv(judging.MODEL_ENV, str(folder))
    with pytest.raises(judging.JudgeDamaged):
        judging.load_judge()


@pytest.fixture(scope="module")
def judge():
    return judging.load_judge()


@requires_flite
@pytest.mark.audio
@pytest.mark.parametrize("voice", ["kal16", "slt", "rms", "awb"])
def test_a_phrase_said_alone_scores_best_as_itself(judge, voice, audio_cache):
    for phrase in ("ask us a question", "give us a tip"):
        audio = np.concatenate([silence(0.5), flite(phrase, voice, audio_cache), silence(0.4)])
        judgement = judge.judge(audio, WAKE, after_speech=False, transcribe=True)
        best = judgement.best(WAKE)
        intent_of = {p: "question" if "question" in p else "tip" for p in WAKE}
        assert intent_of[best.phrase] == intent_of[phrase], judgement.describe()
        assert judgement.scores[phrase].score > -2.5, judgement.describe(phrase)
        assert len(judgement.scores[phrase].tokens) >= 4


@requires_flite
@pytest.mark.audio
@pytest.mark.parametrize("voice", ["slt", "rms"])
def test_a_sound_alike_scores_below_the_phrase(judge, voice, audio_cache):
    """Sentences in no list of the program: the word that differs is heard (its token is the
    least likely of the phrase's)."""
    pairs = [("the guide gave us a tip", "give us a tip"), ("she asked us a question", "ask us a question")]
    for said, phrase in pairs:
        real = judge.judge(np.concatenate([silence(0.5), flite(phrase, voice, audio_cache), silence(0.4)]), WAKE, after_speech=False)
        alike = judge.judge(np.concatenate([silence(0.5), flite(said, voice, audio_cache), silence(0.4)]), WAKE, after_speech=True)
        assert alike.scores[phrase].score < real.scores[phrase].score, (said, alike.describe(phrase), real.describe(phrase))
        weakest = min(alike.scores[phrase].tokens, key=lambda t: t[1])
        assert weakest[0].strip().lower() in ("give", "ask", "us"), alike.describe(phrase)


@requires_flite
@pytest.mark.audio
def test_a_phrase_right_after_a_sentence_is_scored_after_it(judge, audio_cache):
    lead = flite("okay, the lights are off now.", "slt", audio_cache)
    audio = np.concatenate([silence(0.5), lead, silence(0.15), flite("ask us a question", "slt", audio_cache), silence(0.4)])
    after = judge.judge(audio, WAKE, after_speech=True, transcribe=True)
    alone = judge.judge(audio, WAKE, after_speech=False)
    assert after.scores["ask us a question"].prefix, after.describe("ask us a question")
    assert after.scores["ask us a question"].score > alone.scores["ask us a question"].score + 1.0
    assert "question" in after.transcript.lower()


def test_the_tokenizer_is_whispers_token_for_token():
    """recognizers/whisper_tokens.py against the tokenizers package, on the phrases, the
    bench's ordinary sentences and some awkward text."""
    tokenizers = pytest.importorskip("tokenizers")
    from voice_skill.recognizers.whisper_tokens import WhisperTokenizer

    path = judging.model_dir() / "tokenizer.json"
    theirs, mine = tokenizers.Tokenizer.from_file(str(path)), WhisperTokenizer(path)
    sentences = (Path(__file__).resolve().parent.parent / "bench" / "ordinary_sentences.txt").read_text().splitlines()
    texts = [judging.written_forms(p)[0] for p in WAKE] + [" " + s for s in sentences[:300] if s and not s.startswith("#")]
    texts += [" That's enough!", "   spaces  ", " naïve café 2024 — “quotes”", " don't_stop 12.5%", " 日本語"]
    for text in texts:
        ids = theirs.encode(text, add_special_tokens=False).ids
        assert mine.encode(text) == ids, text
        assert mine.decode(ids) == theirs.decode(ids), text
    start = [mine.token_to_id("<|startoftranscript|>"), mine.token_to_id("<|notimestamps|>")]
    assert start == [theirs.token_to_id("<|startoftranscript|>"), theirs.token_to_id("<|notimestamps|>")]
    assert mine.decode(start + mine.encode(" Ask us a question.") + [mine.token_to_id("<|endoftext|>")]) == " Ask us a question."
