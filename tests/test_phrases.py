"""Phrase packs: loading, validation with file:line, the no-repeat bag and its state file."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from voice_skill.phrases import ContentFilter, PhraseBag, bundled_phrases_dir, check_packs, load_library, parse_pack

GOOD = """\
# a pack
[pack]
kind = "question"
category = "playful"

[[phrase]]
id = "x-1"
level = "light"
text = "What made you smile today?"

[[phrase]]
id = "x-2"
level = "deeper"
text = "What do you wish I asked you more often?"
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def test_good_pack_loads_with_metadata(tmp_path):
    phrases, problems = parse_pack(write(tmp_path, "p.toml", GOOD))
    assert problems == []
    assert [(p.id, p.kind, p.category, p.level) for p in phrases] == [
        ("x-1", "question", "playful", "light"),
        ("x-2", "question", "playful", "deeper"),
    ]
    assert phrases[1].source.endswith("p.toml:11")


@pytest.mark.parametrize(
    "mutation, line, message",
    [
        (lambda s: s.replace('level = "deeper"', 'level = "medium"'), 11, "level must be one of"),
        (lambda s: s.replace('text = "What do you wish I asked you more often?"', 'text = "   "'), 11, "empty text"),
        (lambda s: s.replace('id = "x-2"\n', ""), 11, "missing id"),
        (lambda s: s.replace('id = "x-2"', 'id = "x-2"\ncolour = "red"'), 11, "unknown key"),
        (lambda s: s.replace('kind = "question"', 'kind = "story"'), 2, "kind must be one of"),
        (lambda s: s.replace('text = "What made', 'text = What made'), 9, "not valid TOML"),
        (lambda s: s.replace("[pack]\n", ""), 1, "missing [pack]"),
        (lambda s: s.replace('id = "x-2"', 'id = "x-2"\nseconds = "two minutes"'), 11, "seconds must be a whole number from 10 to 1800"),
        (lambda s: s.replace('id = "x-2"', 'id = "x-2"\nseconds = 5'), 11, "seconds must be a whole number from 10 to 1800"),
        (lambda s: s.replace('id = "x-2"', 'id = "x-2"\nseconds = 90.5'), 11, "seconds must be a whole number from 10 to 1800"),
    ],
    ids=["bad-level", "empty-text", "missing-id", "unknown-key", "bad-kind", "bad-toml", "no-pack", "seconds-text", "seconds-too-short", "seconds-fraction"],
)
def test_bad_pack_reports_file_and_line(tmp_path, mutation, line, message):
    path = write(tmp_path, "bad.toml", mutation(GOOD))
    _, problems = parse_pack(path)
    assert problems, "the bad pack was accepted"
    assert problems[0].path == path and problems[0].line == line, str(problems[0])
    assert message in problems[0].message
    assert str(problems[0]).startswith(f"{path}:{line}: ")


def test_a_timed_phrase_carries_its_seconds(tmp_path):
    phrases, problems = parse_pack(write(tmp_path, "p.toml", GOOD.replace('id = "x-2"', 'id = "x-2"\nseconds = 120')))
    assert problems == [] and [p.seconds for p in phrases] == [None, 120]


def test_bad_encoding_reports_line(tmp_path):
    path = write(tmp_path, "latin.toml", GOOD.encode().replace(b"smile", b"sm\xefle"))
    _, problems = parse_pack(path)
    assert problems[0].line == 9 and "UTF-8" in problems[0].message


def test_duplicate_ids_across_files(tmp_path):
    write(tmp_path, "a.toml", GOOD)
    write(tmp_path, "b.toml", GOOD.replace('id = "x-1"', 'id = "y-1"'))
    phrases, problems = check_packs([tmp_path])
    assert [p.id for p in phrases] == ["x-1", "x-2", "y-1"]
    assert len(problems) == 1
    assert problems[0].path.name == "b.toml" and problems[0].line == 11
    assert "duplicate id x-2" in problems[0].message and "a.toml:11" in problems[0].message


def test_bundled_library_is_valid():
    phrases, problems = check_packs([bundled_phrases_dir()])
    assert problems == []
    assert len(phrases) > 60


def library():
    return load_library([bundled_phrases_dir()])


def test_bag_never_repeats_before_the_kind_is_exhausted():
    phrases = library()
    bag = PhraseBag(phrases, rng=random.Random(3))
    questions = [p for p in phrases if p.kind == "question"]
    drawn = [bag.draw("question").id for _ in range(len(questions))]
    assert sorted(drawn) == sorted(p.id for p in questions)
    # the next round starts without repeating the last phrase of the previous one
    following = [bag.draw("question").id for _ in range(len(questions))]
    assert following[0] != drawn[-1]
    assert len(set(following)) == len(questions)


def test_bag_never_says_the_same_twice_in_a_row():
    bag = PhraseBag(library(), rng=random.Random(5))
    ids = [bag.draw("tip").id for _ in range(500)]
    assert all(a != b for a, b in zip(ids, ids[1:]))


def test_bag_survives_restart(tmp_path):
    state = tmp_path / "state" / "bag.json"
    phrases = library()
    first = PhraseBag(phrases, state, rng=random.Random(1))
    seen = {first.draw("question").id for _ in range(20)}
    second = PhraseBag(phrases, state, rng=random.Random(99))
    total = len([p for p in phrases if p.kind == "question"])
    rest = [second.draw("question").id for _ in range(total - 20)]
    assert not seen & set(rest)
    assert len(seen | set(rest)) == total
    saved = json.loads(state.read_text())
    assert set(saved) == {"version", "bags", "last"}  # ids and positions only
    assert not (tmp_path / "state" / "bag.json.tmp").exists()


@pytest.mark.parametrize("garbage", [b"{not json", b"\x00\xff\xfe", b'{"bags": {"question": {"order": 3, "position": "x"}}}', b"[]"])
def test_corrupt_state_file_is_reset_with_a_warning(tmp_path, caplog, garbage):
    state = tmp_path / "bag.json"
    state.write_bytes(garbage)
    bag = PhraseBag(library(), state, rng=random.Random(1))
    assert bag.draw("question").kind == "question"
    assert "corrupt" in caplog.text
    assert json.loads(state.read_text())["bags"]["question"]["position"] == 1


def test_unwritable_state_dir_works_without_persistence(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    bag = PhraseBag(library(), blocker / "bag.json", rng=random.Random(1))
    ids = [bag.draw("tip").id for _ in range(5)]
    assert len(set(ids)) == 5
    assert caplog.text.count("cannot save") == 1


def test_sexual_category_is_off_by_default_and_can_be_enabled():
    phrases = library()
    assert any(p.category == "sexual" for p in phrases)
    bag = PhraseBag(phrases, rng=random.Random(2))
    tips = [p for p in phrases if p.kind == "tip"]
    default = {bag.draw("tip").category for _ in range(len(tips) * 2)}
    assert "sexual" not in default
    opted_in = ContentFilter(include=frozenset({"sexual"}))
    assert "sexual" in {bag.draw("tip", opted_in).category for _ in range(len(tips) * 2)}


def test_disabled_categories_and_levels_never_appear():
    bag = PhraseBag(library(), rng=random.Random(4))
    only = ContentFilter(categories=frozenset({"playful", "dreams"}), levels=frozenset({"light"}))
    drawn = [bag.draw("question", only) for _ in range(200)]
    assert {p.category for p in drawn} <= {"playful", "dreams"}
    assert {p.level for p in drawn} == {"light"}


def test_library_counts_and_metadata():
    phrases = library()
    default = ContentFilter()
    enabled = [p for p in phrases if default.allows(p)]
    counts = Counter(p.kind for p in enabled)
    assert counts["question"] >= 150
    assert counts["tip"] >= 60
    categories = Counter((p.kind, p.category) for p in enabled)
    assert len([c for k, c in categories if k == "question"]) >= 6
    assert {p.level for p in enabled} == {"light", "deeper"}
