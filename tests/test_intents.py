"""The trigger table and matching what was heard to an intent."""

from __future__ import annotations

import pytest

from voice_skill.errors import UserError
from voice_skill.intents import IntentMatcher, load_triggers, normalize
from voice_skill.phrases import bundled_phrases_dir
from voice_skill.recognizers.base import Heard

TABLE = load_triggers(bundled_phrases_dir() / "triggers.toml")


def heard(text, utterance=1, at=1.0):
    return Heard(text, utterance, at)


def test_default_triggers():
    assert TABLE.intents["question"] == ("ask us a question", "ask me a question", "give us a question")
    assert TABLE.intents["tip"] == ("give us a tip", "tell us a tip", "give me a tip")
    assert TABLE.follow_up == {"another", "repeat", "stop", "deeper", "lighter", "skip", "favorite", "goodnight"}
    assert "ask him a question" in TABLE.decoys


@pytest.mark.parametrize("text, intent", [
    ("Ask us a question!", "question"), ("give me a tip", "tip"), ("That’s enough.", "stop"),
    ("next one", "another"), ("say that again", "repeat"),
    ("Go deeper.", "deeper"), ("something lighter", "lighter"), ("Skip that one!", "skip"), ("skip", None), ("not that one", "skip"),
    ("I like that one.", "favorite"), ("Good night!", "goodnight"),
    ("ask him a question", None), ("i have a question", None), ("give it a tip", None),
    ("tell us a story", None), ("ask us a question please", None),
])
def test_intent_of(text, intent):
    assert TABLE.intent_of(text) == intent


def test_normalize():
    assert normalize("  Tell US, a tip. ") == "tell us a tip"


def test_one_utterance_fires_once():
    matcher = IntentMatcher(TABLE)
    assert matcher.match(Heard("ask us a question", 7, 1.0, final=False)).kind == "question"
    assert matcher.match(Heard("ask us a question", 7, 1.4, final=True)) is None
    assert matcher.match(Heard("ask us a question", 8, 5.0)).kind == "question"


def test_custom_triggers_file(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('[intent.question]\nphrases = ["질문 해 줘"]\n[intent.tip]\nphrases = ["팁 좀 줘"]\n', encoding="utf-8")
    table = load_triggers(path)
    assert table.intent_of("질문 해 줘") == "question"


@pytest.mark.parametrize("content, message", [
    ("[intent.question]\nphrases = []\n", "needs phrases"),
    ("[intent.question]\nphrases = ['a b']\n[intent.tip]\nphrases = ['a b']\n", "in both"),
    ("not toml = = \n", "not valid TOML"),
    ("[other]\nx = 1\n", r"no \[intent\.NAME\]"),
])
def test_bad_triggers_file(tmp_path, content, message):
    path = tmp_path / "t.toml"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as info:
        load_triggers(path)
    assert str(path) in str(info.value)
