"""The packaged neural wake signal on real speech (flite voices: never trained or tuned on)."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest

from audio_factory import add_noise, flite, have, silence
from voice_skill.errors import UserError

pytest.importorskip("pyopen_wakeword")
from voice_skill.recognizers import neural  # noqa: E402

requires_flite = pytest.mark.skipif(not have("flite"), reason="flite is not installed (apt-get install flite)")
RATE = 16000
WAKE = {"question": ("ask us a question", "ask me a question", "give us a question"), "tip": ("give us a tip", "tell us a tip", "give me a tip")}
ORDINARY = (
    "the weather will be dry and bright tomorrow",
    "could you put the kettle on",
    "we watched the whole series in one weekend",
    "i think the shop closes at six",
    "the children are asleep at last",
    "it was a long drive home",
)


@pytest.fixture(scope="module")
def detector():
    return neural.load_detector()


def _score(detector, audio: np.ndarray, end: float) -> neural.NeuralEvidence:
    """As the wake engine asks: the last ~3 s, window ends within 0.3 s of the speech end.
    The evidence's end is given back in seconds into ``audio``."""
    start = max(0, int((end + 0.3 - 3.0) * RATE))
    evidence = detector.score(audio[start:], (end - 0.3 - start / RATE, end + 0.3 - start / RATE))
    return neural.NeuralEvidence(evidence.scores, evidence.end + start / RATE)


def _alone(speech: np.ndarray) -> tuple[np.ndarray, float]:
    audio = np.concatenate([silence(2.5), speech, silence(0.6)])
    return audio, 2.5 + len(speech) / RATE


def test_detector_shape(detector):
    assert detector.intents == ("question", "tip")
    assert 1.5 < detector.window_seconds < 2.5
    assert 0.0 < detector.thresholds["dev_fa_1_per_hour"] < 1.0


@requires_flite
@pytest.mark.audio
@pytest.mark.parametrize("voice", ["kal16", "rms"])
def test_flite_wake_phrases_score_high_for_their_intent(detector, voice, audio_cache):
    right, high, scores = 0, 0, []
    for intent, phrases in WAKE.items():
        other = "tip" if intent == "question" else "question"
        for phrase in phrases:
            audio, end = _alone(flite(phrase, voice, audio_cache))
            evidence = _score(detector, audio, end)
            right += evidence.scores[intent] > 3 * evidence.scores[other]
            high += evidence.scores[intent] >= 0.5
            scores.append(evidence.scores[intent])
            assert end - 0.3 - 1e-6 <= evidence.end <= end + 0.3 + 1e-6
    assert right == 6, f"{voice}: the right intent clearly ahead in {right} of 6 phrases"
    assert high >= 5 and np.median(scores) >= 0.7, f"{voice}: scores {np.round(scores, 2)}"


@requires_flite
@pytest.mark.audio
def test_flite_ordinary_sentences_score_low(detector, audio_cache):
    for voice in ("slt", "rms"):
        for sentence in ORDINARY:
            audio, end = _alone(flite(sentence, voice, audio_cache))
            evidence = _score(detector, audio, end)
            assert max(evidence.scores.values()) < 0.25, (voice, sentence, evidence)


@requires_flite
@pytest.mark.audio
def test_run_on_phrase_found_and_its_lead_in_not(detector, audio_cache):
    lead = flite("we finally finished painting the spare bedroom", "kal16", audio_cache)
    phrase = flite("ask us a question", "kal16", audio_cache)
    audio = np.concatenate([silence(1.0), lead, silence(0.12), phrase, silence(0.6)])
    lead_end = 1.0 + len(lead) / RATE
    phrase_end = lead_end + 0.12 + len(phrase) / RATE
    noisy = add_noise(audio, 10.0, seed=4, speech_level=float(np.sqrt(np.mean(phrase**2))))
    for version in (audio, noisy):
        at_phrase = _score(detector, version, phrase_end)
        at_lead = _score(detector, version, lead_end)
        assert at_phrase.scores["question"] >= 0.6, at_phrase
        assert max(at_lead.scores.values()) < 0.25, at_lead
        assert at_phrase.scores["question"] > 5 * max(at_lead.scores.values())


def test_short_audio_is_padded_not_an_error(detector):
    evidence = detector.score(np.zeros(4000, np.float32), (0.1, 0.25))
    assert set(evidence.scores) == {"question", "tip"}
    assert max(evidence.scores.values()) < 0.5


def test_missing_weights_file_is_a_user_error(tmp_path):
    path = tmp_path / "nowhere.npz"
    with pytest.raises(UserError, match="nowhere.npz.*not found"):
        neural.Classifier(path)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing layer", "wrong shape"])
def test_corrupt_weights_file_is_a_user_error(tmp_path, damage):
    path = tmp_path / "broken.npz"
    if damage == "garbage":
        path.write_bytes(b"this is not a model\n" * 10)
    elif damage == "truncated":
        data = neural.DEFAULT_MODEL.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        with np.load(neural.DEFAULT_MODEL, allow_pickle=False) as model:
            arrays = {k: model[k] for k in model.files}
        if damage == "missing layer":
            del arrays["w1"]
        else:
            arrays["w0"] = arrays["w0"][:-5]
        np.savez(path, **arrays)
    with pytest.raises(UserError) as info:
        neural.Classifier(path)
    message = str(info.value)
    assert "broken.npz" in message and "\n" not in message
    assert zipfile  # (the zip error type is part of what Classifier catches)


def test_load_detector_reports_a_bad_weights_file(tmp_path):
    bad = tmp_path / "bad.npz"
    shutil.copy(neural.DEFAULT_MODEL, bad)
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(UserError, match="bad.npz"):
        neural.load_detector(bad)
