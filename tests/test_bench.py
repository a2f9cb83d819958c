"""The benchmark (bench/): corpus builder, scorer, report, and a small slice through the real CLI."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `pytest` without `python3 -m` does not put the repo root on the path
    sys.path.insert(0, str(REPO))

from bench.audio import RATE, read_mono16k  # noqa: E402
from bench.corpus import (  # noqa: E402
    CONDITIONS,
    ENDS_FILE,
    ENDS_SESSION,
    FOLLOWUP_GAP,
    OUTSIDE_PAUSE,
    SESSION_COMMANDS,
    DEV_LEADINS,
    DEV_NEAR_MISSES,
    DEV_SENTENCES,
    NEAR_MISSES,
    RUNON_GAP,
    WAKE_INTENTS,
    CorpusSpec,
    Utterance,
    all_phrases,
    build_corpus,
    command_phrases,
    contains_phrase,
    followup_phrases,
    held_out_near_misses,
    normalized,
    ordinary_sentences,
    runon_leadins,
    sessions,
    text_lines,
    trigger_table,
    trigger_sounds_in,
    trigger_text_in,
    wake_phrases,
)
from bench.manifest import (  # noqa: E402
    FOLLOW_UP,
    FOLLOWUPS_FILE,
    HELD_OUT,
    LEAD_IN,
    LISTED,
    NEAR_MISS,
    NIGHT_FILE,
    ORDINARY,
    ORDINARY_FILE,
    OUTSIDE,
    TRIGGER,
    TRIGGERS_FILE,
    AudioFile,
    Manifest,
    Span,
)
from bench.measure import KWS_PEER, LM_PEER, PROGRAM, Run, Sandbox, run_on_file  # noqa: E402
from bench.report import NM_HELD_OUT, NM_LISTED, NM_TRAINED, NM_TRAINING_VOICE, Scored, followup_line, format_table, near_miss_line, stray_line, summarize, summary_json  # noqa: E402
from bench.score import (  # noqa: E402
    ACCEPTED,
    FA_DUPLICATE,
    FA_NEAR_MISS,
    FA_ORDINARY,
    FA_OTHER,
    MISSED,
    NO_WINDOW,
    TAIL,
    WRONG_INTENT,
    Stray,
    Totals,
    Wake,
    accept_rate,
    delay_stats,
    percentile,
    score_events,
    score_file,
    strays_from_events,
    wakes_from_events,
)
from audio_factory import have, rms  # noqa: E402
from conftest import requires_espeak, requires_flite  # noqa: E402

TABLE = trigger_table()

# ------------------------------------------------------------------ corpus text


HELD_OUT_TEXTS = held_out_near_misses()
LEADINS = runon_leadins()


def test_no_command_text_in_ordinary_sentences_near_misses_or_lead_ins():
    assert trigger_text_in(list(NEAR_MISSES) + list(HELD_OUT_TEXTS) + list(LEADINS), all_phrases(TABLE)) == []
    # ... nor one that sounds the same in other spelling: the lead-in "goodnight world" made
    # the ritual's "good night" act in a run-on file, and the rest of the file was quiet.
    assert trigger_sounds_in(list(NEAR_MISSES) + list(HELD_OUT_TEXTS) + list(LEADINS), all_phrases(TABLE)) == []
    assert trigger_sounds_in(["goodnight world", "a good knight"], ["good night"]) == [("goodnight world", "good night"), ("a good knight", "good night")]
    assert trigger_text_in(ordinary_sentences(), command_phrases(TABLE)) == []
    assert {"ask us a question", "give us a tip", "speak softer", "a bit louder", "faster please"} <= set(command_phrases(TABLE))


def test_the_trigger_check_itself_finds_a_trigger():
    assert contains_phrase("Okay, ask us a question, please!", "ask us a question")
    assert not contains_phrase("Let's ask us a questionnaire", "ask us a question")
    assert trigger_text_in(["Then give us a tip."], ["give us a tip"]) == [("Then give us a tip.", "give us a tip")]


def test_ordinary_text_is_big_varied_and_baits_the_commands():
    sentences = ordinary_sentences()
    assert len(sentences) >= 900 and len(set(sentences)) == len(sentences)
    words = [set(normalized([s]).__iter__().__next__().split()) for s in sentences]
    for bait in ("louder", "softer", "slower", "faster", "stop", "another", "next", "repeat", "question", "tip", "ask", "give"):
        assert sum(bait in w for w in words) >= 5, bait  # said in ordinary ways, never as a command
    assert {"ask him a question", "i have a question", "give it a tip", "tell us a story"} <= set(NEAR_MISSES)
    assert len(NEAR_MISSES) >= 16 and len(set(NEAR_MISSES)) == len(NEAR_MISSES)


def test_run_on_lead_ins():
    assert len(LEADINS) >= 60 and len(set(LEADINS)) == len(LEADINS)
    assert all(len(line.split()) <= 10 for line in LEADINS)


# ------------------------------------------------------------------ held-out near misses stay held out
# If one of these fails, the held-out sentence is what must go (see heldout_near_misses.txt).


def collisions(texts: frozenset[str]) -> list[tuple[str, str]]:
    """(held-out, other) where they are equal or the held-out sentence is said inside the other."""
    held = normalized(HELD_OUT_TEXTS)
    return sorted((h, t) for h in held for t in texts if h == t or f" {h} " in f" {t} ")


def test_held_out_near_misses_are_new_to_the_program_and_the_bench_list():
    assert 30 <= len(HELD_OUT_TEXTS) <= 50 and len(set(HELD_OUT_TEXTS)) == len(HELD_OUT_TEXTS)
    held = normalized(HELD_OUT_TEXTS)
    assert held.isdisjoint(normalized(TABLE.decoys))
    assert held.isdisjoint(normalized(NEAR_MISSES))
    assert held.isdisjoint(normalized(text_lines(DEV_NEAR_MISSES)))  # never used in dev mode either


def test_held_out_near_misses_are_not_runtime_confusions():
    confusions = pytest.importorskip("voice_skill.recognizers.confusions", reason="voice_skill.recognizers.confusions does not exist yet")
    made = normalized(c for phrase, _ in wake_phrases(TABLE) for c in confusions.confusion_phrases(phrase))
    assert collisions(made) == []


def test_held_out_near_misses_are_not_training_hard_negatives():
    if not (REPO / "training" / "confusions.py").exists():
        pytest.skip("training/confusions.py does not exist yet")
    from training.confusions import hard_negatives

    assert collisions(normalized(x for group in hard_negatives(TABLE).values() for x in group)) == []


def test_held_out_near_misses_are_not_in_generated_training_sentences():
    if not (REPO / "training" / "templates.py").exists():
        pytest.skip("training/templates.py does not exist yet")
    from training.templates import template_sentences

    assert collisions(normalized(template_sentences())) == []


def test_held_out_near_misses_are_in_no_training_sentence():
    files = sorted((REPO / "training" / "sentences").glob("*.txt"))
    if not files:
        pytest.skip("training/sentences/*.txt do not exist yet")
    assert collisions(normalized(line for f in files for line in text_lines(f))) == []


def test_dev_texts_are_not_evaluation_texts():
    dev_sentences, dev_near, dev_leadins = (normalized(text_lines(p)) for p in (DEV_SENTENCES, DEV_NEAR_MISSES, DEV_LEADINS))
    assert len(dev_sentences) >= 100 and len(dev_near) >= 20 and len(dev_leadins) >= 20
    assert dev_sentences.isdisjoint(normalized(ordinary_sentences()))
    assert dev_near.isdisjoint(normalized(NEAR_MISSES) | normalized(HELD_OUT_TEXTS))
    assert dev_leadins.isdisjoint(normalized(LEADINS))
    assert trigger_text_in(list(dev_near) + list(dev_leadins), all_phrases(TABLE)) == []
    assert trigger_text_in(list(dev_sentences), command_phrases(TABLE)) == []
    spec = CorpusSpec.dev(voices=("dev-x",))
    assert spec.held_out == () and spec.held_out_per_file == 0 and spec.ordinary_text == DEV_SENTENCES.name


def test_the_full_corpus_covers_the_issue():
    spec = CorpusSpec()
    assert set(spec.conditions) == {"clean", "soft", "reverb", "fan10", "fan5", "tempo0.9", "tempo1.1", "runon", "runon10"}
    assert set(spec.voices) == {"kal16", "slt", "rms", "awb", "joe", "espeak"}
    assert spec.ordinary_minutes >= 180 and 20 <= spec.night_minutes <= 30
    assert spec.held_out == HELD_OUT_TEXTS and spec.held_out_per_file > 0
    assert {c.name: c.snr_db for c in CONDITIONS if c.runon} == {"runon": None, "runon10": 10.0}
    assert {intent for _, intent in wake_phrases(TABLE)} == set(WAKE_INTENTS)
    assert spec.followup_takes == 2


def test_follow_up_phrases_are_every_phrase_of_every_command():
    said = followup_phrases(TABLE)
    assert len(said) == len(set(said))
    assert {intent for _, intent in said} == set(TABLE.intents) - set(WAKE_INTENTS)
    assert {"deeper", "lighter", "skip", "favorite", "goodnight", "another", "repeat", "stop", "softer", "louder", "slower", "faster"} <= {i for _, i in said}
    for intent, phrases in TABLE.intents.items():
        if intent not in WAKE_INTENTS:
            assert [p for p, i in said if i == intent] == list(phrases)


def commands(*intents: str) -> list[Utterance]:
    from bench.audio import voice_named

    return [Utterance(f"{intent} {n}", voice_named("slt"), FOLLOW_UP, intent) for n, intent in enumerate(intents)]


def test_sessions_end_with_stop_and_the_night_with_goodnight():
    import random

    said = commands(*(i for _, i in followup_phrases(TABLE)))
    for seed in range(20):
        groups = sessions(said, random.Random(seed))
        assert sorted(c.text for g in groups for c in g) == sorted(c.text for c in said)  # each once
        assert all(1 <= len(g) <= SESSION_COMMANDS for g in groups)
        assert all(c.intent not in ENDS_SESSION + ENDS_FILE for g in groups for c in g[:-1])  # stop and goodnight end a session
        assert groups[-1][-1].intent in ENDS_FILE and not any(c.intent in ENDS_FILE for g in groups[:-1] for c in g)
    assert sessions(said, random.Random(1)) == sessions(said, random.Random(1))
    assert sessions(said, random.Random(1)) != sessions(said, random.Random(2))
    # more commands that close the window than sessions would need: more sessions
    assert len(sessions(commands("stop", "stop", "stop", "another"), random.Random(0))) == 3
    assert [[c.intent for c in g] for g in sessions(commands("goodnight"), random.Random(0))] == [["goodnight"]]
    with pytest.raises(ValueError, match="one command that ends the night"):
        sessions(commands("goodnight", "goodnight"), random.Random(0))


# ------------------------------------------------------------------ corpus builder

def skip_without_synthesis() -> None:
    if not (have("flite") and have("sox")):
        pytest.skip("flite and sox are needed to build a corpus (apt-get install flite sox)")


TINY = CorpusSpec(
    conditions=("clean", "fan10", "runon"),
    voices=("slt",),
    renditions=1,
    near_misses_per_file=2,
    held_out_per_file=2,
    ordinary_minutes=0.4,
    ordinary_chunk_minutes=0.15,
    ordinary_fan_every=2,
    night_minutes=1.0,
    night_phrases=3,
    followup_takes=1,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Manifest, Path, Path]:
    """The tiny corpus built twice with the same seed (a cache shared, outputs apart)."""
    skip_without_synthesis()
    root = tmp_path_factory.mktemp("bench-corpus")
    first = build_corpus(TINY, 7, root / "a", root / "cache")
    second = build_corpus(TINY, 7, root / "b", root / "cache")
    assert first == second
    return first, root / "a", root / "b"


def test_same_seed_same_manifest_and_audio(tiny):
    manifest, a, b = tiny
    assert (a / "manifest.json").read_text() == (b / "manifest.json").read_text()
    for f in manifest.files:
        assert (a / f.path).read_bytes() == (b / f.path).read_bytes(), f.name
    assert Manifest.read(a / "manifest.json") == manifest


def test_another_seed_another_corpus(tiny, tmp_path):
    manifest, a, _ = tiny
    other = build_corpus(TINY, 8, tmp_path / "c", a.parent / "cache")
    assert other.to_json() != manifest.to_json()


def test_spans_lie_inside_their_file_and_apart(tiny):
    manifest, a, _ = tiny
    assert {f.kind for f in manifest.files} == {TRIGGERS_FILE, ORDINARY_FILE, NIGHT_FILE, FOLLOWUPS_FILE}
    for f in manifest.files:
        audio = read_mono16k(a / f.path)
        assert abs(len(audio) / RATE - f.duration) < 0.01
        for span in f.spans:
            assert 0 < span.start < span.end <= f.duration, (f.name, span)
        if f.kind != ORDINARY_FILE:  # scoring windows of phrases never overlap (a lead-in is part of its phrase)
            phrases = [s for s in f.spans if s.role != LEAD_IN]
            for before, after in zip(phrases, phrases[1:]):
                assert after.start > before.end + TAIL, (f.name, before, after)


def test_spans_mark_where_the_speech_is(tiny):
    manifest, a, _ = tiny
    clean = next(f for f in manifest.files if f.name == "triggers-clean-slt")
    audio = read_mono16k(a / clean.path)
    for span in clean.spans:
        inside = audio[round(span.start * RATE) : round(span.end * RATE)]
        before = audio[round((span.start - 0.3) * RATE) : round((span.start - 0.002) * RATE)]  # spans are in ms
        assert rms(inside) > 0.02 and rms(before) < 1e-3, span
        assert np.count_nonzero(before) > 0.9 * len(before), "a microphone never gives digital silence"


def test_each_file_holds_what_the_spec_asks(tiny):
    manifest, _, _ = tiny
    triggers = [f for f in manifest.files if f.kind == TRIGGERS_FILE]
    assert [f.name for f in triggers] == ["triggers-clean-slt", "triggers-fan10-slt", "triggers-runon-slt"]
    for f in triggers:
        said = sorted((s.text, s.intent) for s in f.spans_with(TRIGGER))
        assert said == sorted(wake_phrases(TABLE)) * TINY.renditions
        near = f.spans_with(NEAR_MISS)
        assert [s.group for s in near].count(LISTED) == TINY.near_misses_per_file
        assert [s.group for s in near].count(HELD_OUT) == TINY.held_out_per_file
        assert all(s.intent is None and s.text in (NEAR_MISSES if s.group == LISTED else HELD_OUT_TEXTS) for s in near)
        assert len(f.spans_with(LEAD_IN)) == (len(f.spans) // 2 if f.condition == "runon" else 0)
    held = [s.text for f in triggers for s in f.spans_with(NEAR_MISS) if s.group == HELD_OUT]
    assert held == list(dict.fromkeys(held)) and set(held) <= set(HELD_OUT_TEXTS)  # in rotation: no repeats yet
    ordinary = [f for f in manifest.files if f.kind == ORDINARY_FILE]
    assert all(s.role == ORDINARY for f in ordinary for s in f.spans)
    assert sum(f.duration for f in ordinary) >= 0.9 * TINY.ordinary_minutes * 60  # dealt by expected pauses
    assert [(f.name, f.part) for f in ordinary] == [(f"ordinary-slt-{k}", k) for k in range(1, len(ordinary) + 1)] and len(ordinary) >= 2
    assert [f.condition.startswith("ordinary-fan") for f in ordinary] == [k % 2 == 0 for k in range(1, len(ordinary) + 1)]
    night = next(f for f in manifest.files if f.kind == NIGHT_FILE)
    assert night.duration == TINY.night_minutes * 60 and len(night.spans) == TINY.night_phrases


def test_run_on_phrases_come_right_after_a_lead_in(tiny):
    """Every phrase of a run-on file follows a lead-in by RUNON_GAP, and its span is exactly the
    phrase: the phrase's own audio, sample for sample, starts at the span's start."""
    from bench.audio import AudioCache, synthesize, voice_named

    manifest, a, _ = tiny
    runon = next(f for f in manifest.files if f.name == "triggers-runon-slt")
    audio = read_mono16k(a / runon.path)
    cache = AudioCache(a.parent / "cache")
    spans = list(runon.spans)
    assert [s.role for s in spans[::2]] == [LEAD_IN] * (len(spans) // 2)
    for lead, phrase in zip(spans[::2], spans[1::2]):
        assert phrase.role in (TRIGGER, NEAR_MISS) and lead.text in LEADINS and lead.voice == phrase.voice
        gap = phrase.start - lead.end
        assert RUNON_GAP[0] - 0.002 <= gap <= RUNON_GAP[1] + 0.002, (lead, phrase)
        alone = synthesize(phrase.text, voice_named(phrase.voice), cache)  # takes at normal speed in this spec
        assert abs(len(alone) / RATE - (phrase.end - phrase.start)) < 0.002
        start = round(phrase.start * RATE)
        errors = [np.max(np.abs(audio[start + k : start + k + len(alone)] - alone)) for k in range(-10, 11)]
        assert min(errors) < 0.01, (phrase.text, min(errors))  # only the -75 dBFS floor differs
        assert abs(int(np.argmin(errors)) - 10) <= 8  # spans are in ms: 8 samples either way


def test_follow_up_files_keep_every_command_inside_a_live_window(tiny):
    """Every follow-up phrase once inside a window (2-3 s after the wake phrase or command before
    it, at most SESSION_COMMANDS after one wake phrase, stop last in its session, goodnight last
    in the file) and once outside any (before the first wake phrase or 10 s after the last
    command); the audio is where the spans say."""
    manifest, a, _ = tiny
    (file,) = [f for f in manifest.files if f.kind == FOLLOWUPS_FILE]
    assert (file.name, file.voice, file.part) == ("followups-slt-1", "slt", 1)
    expected = sorted(followup_phrases(TABLE))
    assert sorted((s.text, s.intent) for s in file.spans_with(FOLLOW_UP)) == expected
    assert sorted((s.text, s.intent) for s in file.spans_with(OUTSIDE)) == expected
    spans = list(file.spans)
    assert spans[-1].role == FOLLOW_UP and spans[-1].intent in ENDS_FILE
    run = 0
    for before, span in zip(spans, spans[1:]):
        pause = span.start - before.end
        if span.role == FOLLOW_UP:
            assert before.role in (TRIGGER, FOLLOW_UP) and before.intent not in ENDS_SESSION, (before, span)
            assert FOLLOWUP_GAP[0] - 0.002 <= pause <= FOLLOWUP_GAP[1] + 0.002, (before, span)
            run += 1
            assert run <= SESSION_COMMANDS
        else:
            run = 0
            assert pause >= FOLLOWUP_GAP[0] - 0.002
    first_wake = min(s.start for s in spans if s.role == TRIGGER)
    for i, span in enumerate(spans):
        if span.role == OUTSIDE and span.start > first_wake:
            last_heard = max(s.end for s in spans[:i] if s.role in (TRIGGER, FOLLOW_UP))
            assert span.start - last_heard >= OUTSIDE_PAUSE[0] - 0.002, span  # the 8 s window has closed
    assert any(s.role == OUTSIDE and s.start < first_wake for s in spans) and any(s.role == OUTSIDE and s.start > first_wake for s in spans)
    audio = read_mono16k(a / file.path)
    assert abs(len(audio) / RATE - file.duration) < 0.01
    for span in spans:
        assert rms(audio[round(span.start * RATE) : round(span.end * RATE)]) > 0.02, span


# ------------------------------------------------------------------ scorer


def span(text: str, start: float, end: float, role: str = TRIGGER, intent: str | None = "question") -> Span:
    return Span(text, start, end, role, "slt", "clean", intent if role == TRIGGER else None)


def a_file(*spans: Span, kind: str = TRIGGERS_FILE, duration: float = 60.0) -> AudioFile:
    return AudioFile("f", "f.wav", kind, duration, spans, "clean", "slt")


QUESTION = span("ask us a question", 10.0, 11.5)


@pytest.mark.parametrize(
    "at, outcome",
    [(10.0, ACCEPTED), (11.5, ACCEPTED), (11.5 + TAIL, ACCEPTED), (9.99, MISSED), (11.5 + TAIL + 0.01, MISSED)],
)
def test_window_edges(at, outcome):
    score = score_file(a_file(QUESTION), [Wake("question", at)])
    assert score.triggers[0].outcome == outcome
    assert len(score.false_accepts) == (1 if outcome == MISSED else 0)
    if outcome == ACCEPTED:
        assert score.triggers[0].delay == pytest.approx(at - QUESTION.end)


def test_wrong_intent_is_neither_an_accept_nor_a_false_accept():
    score = score_file(a_file(QUESTION), [Wake("tip", 12.0)])
    assert score.triggers[0].outcome == WRONG_INTENT and score.triggers[0].heard == "tip"
    assert score.false_accepts == ()
    assert Totals((score,)).wrong_intents() == 1


def test_each_event_is_counted_once():
    near = span("ask him a question", 20.0, 21.0, NEAR_MISS)
    later_near = span("ask her a question", 22.0, 23.0, NEAR_MISS)  # windows overlap on purpose
    score = score_file(a_file(QUESTION, near, later_near), [Wake("question", 12.0), Wake("question", 12.4), Wake("question", 22.2)])
    assert [t.outcome for t in score.triggers] == [ACCEPTED]
    assert [fa.kind for fa in score.false_accepts] == [FA_DUPLICATE, FA_NEAR_MISS]
    assert score.false_accepts[1].span == near


def test_false_accepts_by_where_they_happen():
    ordinary = a_file(span("Did you lock the door?", 5.0, 6.0, ORDINARY), kind=ORDINARY_FILE)
    assert [fa.kind for fa in score_file(ordinary, [Wake("tip", 5.5), Wake("tip", 40.0)]).false_accepts] == [FA_ORDINARY, FA_ORDINARY]
    quiet = a_file(QUESTION, kind=NIGHT_FILE)
    assert [fa.kind for fa in score_file(quiet, [Wake("tip", 30.0)]).false_accepts] == [FA_OTHER]


def test_false_accepts_per_hour_of_ordinary_speech():
    half_hour = a_file(kind=ORDINARY_FILE, duration=1800.0)
    quarter = a_file(kind=ORDINARY_FILE, duration=900.0)
    elsewhere = a_file(QUESTION, duration=3600.0)
    totals = Totals((score_file(half_hour, [Wake("tip", 100.0)]), score_file(quarter, []), score_file(elsewhere, [Wake("tip", 50.0)])))
    assert totals.ordinary_hours() == pytest.approx(0.75)
    assert totals.false_accepts_per_hour() == pytest.approx(1 / 0.75)
    assert Totals((score_file(elsewhere, []),)).false_accepts_per_hour() is None


def test_delay_statistics():
    spans = [span("ask us a question", 10.0 * i, 10.0 * i + 1.0) for i in range(1, 11)]
    wakes = [Wake("question", s.end + 0.1 * i) for i, s in enumerate(spans, 1)]  # delays 0.1 .. 1.0
    results = score_file(a_file(*spans, duration=200.0), wakes + [Wake("tip", spans[0].end + 1.4)]).triggers
    stats = delay_stats(results)
    assert stats.count == 10 and stats.median == pytest.approx(0.55) and stats.p90 == pytest.approx(0.9)
    assert accept_rate(results).value == 1.0
    assert percentile([], 90) is None and percentile([3.0], 90) == 3.0
    assert delay_stats([]).median is None


def test_only_wake_events_are_wakes():
    events = [{"event": "listening"}, {"event": "wake", "intent": "tip", "at": 3.2}, {"event": "say", "intent": "tip", "at": 3.2}, {"event": "done", "at": 9.0}]
    assert wakes_from_events(events) == [Wake("tip", 3.2)]


RUN = Run("s", "f", 60.0, ({"event": "listening", "engine": "x"}, {"event": "done"}), 0.6, 100.0, 1.0, 0.5, 0)


def table_lines(summaries) -> dict[str, str]:
    return {line.split("  ")[0]: line for line in format_table(summaries).splitlines()}


def test_table_shows_targets_and_whether_they_are_met():
    file = a_file(QUESTION, span("ask him a question", 20.0, 21.0, NEAR_MISS))
    good = summarize("fused", "good", [Scored(RUN, score_file(file, [Wake("question", 11.7)]))], (None, "not measured"), frozenset({"ask him a question"}))
    bad = summarize("old_engine", "bad", [Scored(RUN, score_file(file, [Wake("question", 20.5)]))], (None, "-"), frozenset({"ask him a question"}))
    lines = table_lines([bad, good])
    header = format_table([bad, good]).splitlines()[0].split()
    assert header.index("good") < header.index("met") < header.index("vs") < header.index("bad")  # the fused default first
    assert "100.0% 1/1" in lines["TA clean"] and "yes" in lines["TA clean"]
    assert "0 of 1" in lines["near misses, decoys/training: FA"] and "1 of 1" in lines["near misses, decoys/training: FA"]
    assert "ok" in lines["near misses, decoys/training: FA"] and "WORSE" not in lines["TA clean"]
    assert "not measured" in lines["detection to first audio"]
    assert good.rtf_triggers == pytest.approx(0.01)
    assert near_miss_line(bad) == "bad false accepts: ask him a question -> question x1"
    worse = table_lines([summarize("old_engine", "old", [Scored(RUN, score_file(file, [Wake("question", 11.7)]))], (None, "-")),
                         summarize("fused", "new", [Scored(RUN, score_file(file, []))], (None, "-"))])
    assert "WORSE" in worse["TA clean"] and "NO" in worse["TA clean"]


def test_the_default_is_compared_with_v2_else_the_old_engine():
    """One baseline ("vs"): the past program asked for (v2 unless --baseline old) when it ran,
    else the other one; the table and summary.json say which."""
    from bench.report import BASELINES, TARGETS, baseline_of

    file = a_file(QUESTION, span("ask him a question", 20.0, 21.0, NEAR_MISS))
    heard = lambda *at: [Scored(RUN, score_file(file, [Wake("question", t) for t in at]))]  # noqa: E731
    new = summarize("fused", "v3 (default)", heard(11.7, 20.5), (None, "-"))  # a near miss accepted
    v2 = summarize("v2", "v2 972466b", heard(11.7), (None, "-"))
    old = summarize("old_engine", "old engine 93bb090", heard(), (None, "-"))  # missed the phrase
    assert [p.key for p in BASELINES] == ["v2", "old_engine"] and [p.short for p in BASELINES] == ["v2", "old"]
    assert baseline_of([old, new, v2]) is v2 and baseline_of([old, new, v2], "old_engine") is old
    assert baseline_of([old, new]) is old and baseline_of([v2, new], "old_engine") is v2 and baseline_of([new]) is None

    against_v2 = format_table([old, v2, new])
    header = against_v2.splitlines()[0]
    assert "vs v2" in header and "vs old" not in header
    lines = {line.split("  ")[0]: line for line in against_v2.splitlines()}
    assert "WORSE" in lines["near misses, bench list, not trained"] and "WORSE" not in lines["TA clean"]
    lines = {line.split("  ")[0]: line for line in format_table([old, v2, new], baseline="old_engine").splitlines()}
    assert "vs old" in format_table([old, v2, new], baseline="old_engine").splitlines()[0]
    assert "ok" in lines["TA clean"]  # better than the old engine there
    assert "vs" not in format_table([new]).splitlines()[0].split()

    data = summary_json(Manifest(1, {}, ()), [old, v2, new], {})
    assert data["baseline"] == "v2" and data["worse_than_baseline"] == ["near misses, bench list, not trained"]
    assert summary_json(Manifest(1, {}, ()), [old, v2, new], {}, "old_engine")["baseline"] == "old_engine"
    assert summary_json(Manifest(1, {}, ()), [new], {})["baseline"] is None
    # wake engine v3's targets where they differ from issue 10's
    assert {k: TARGETS[k].value for k in ("ta_reverb", "delay_p90", "rtf_speech", "rtf_night", "peak_rss_mb", "ta_runon", "ta_runon10")} == {
        "ta_reverb": 0.97, "delay_p90": 0.6, "rtf_speech": 0.05, "rtf_night": 0.005, "peak_rss_mb": 350, "ta_runon": 0.95, "ta_runon10": 0.85}


def test_near_misses_are_split_into_trained_listed_held_out_and_training_voice():
    held = Span("give us a lesson", 30.0, 31.0, NEAR_MISS, "slt", "clean", None, HELD_OUT)
    held_known = Span("she asked us a question", 40.0, 41.0, NEAR_MISS, "slt", "clean", None, HELD_OUT)  # known after all: trained
    listed = Span("give us a kick", 50.0, 51.0, NEAR_MISS, "slt", "clean", None, LISTED)
    decoy = Span("ask him a question", 20.0, 21.0, NEAR_MISS, "slt", "clean", None, LISTED)
    espeak = Span("give us a lesson", 20.0, 21.0, NEAR_MISS, "espeak", "clean", None, HELD_OUT)
    file = a_file(QUESTION, decoy, held, held_known, listed, duration=70.0)
    wakes = [Wake("question", 11.7), Wake("question", 20.5), Wake("question", 30.5), Wake("tip", 50.5)]
    espeak_file = AudioFile("e", "e.wav", TRIGGERS_FILE, 60.0, (espeak,), "clean", "espeak")
    scored = [Scored(RUN, score_file(file, wakes)), Scored(RUN, score_file(espeak_file, [Wake("tip", 20.2)]))]
    summary = summarize("fused", "a", scored, (None, "-"), frozenset({"ask him a question", "she asked us a question"}))
    got = {g: (n.false_accepts, n.total) for g, n in summary.near_misses.items()}
    assert got == {NM_TRAINED: (1, 2), NM_LISTED: (1, 1), NM_HELD_OUT: (1, 1), NM_TRAINING_VOICE: (1, 1)}
    lines = table_lines([summary])
    assert "1 of 1 (100.0%)" in lines["held-out near misses: FA"] and "NO" in lines["held-out near misses: FA"]
    assert "1 of 2" in lines["near misses, decoys/training: FA"]
    assert [fa["group"] for fa in summary.false_accept_list] == [NM_TRAINED, NM_HELD_OUT, NM_LISTED, NM_TRAINING_VOICE]
    assert summary.ta_by_voice["espeak"].total == 0 and summary.ta_overall.total == 1  # espeak-ng is in no target


# ------------------------------------------------------------------ stray commands


def test_stray_commands_are_commands_that_acted():
    events = [
        {"event": "listening"},
        {"event": "wake", "intent": "louder", "at": 5.0},
        {"event": "voice", "change": "louder", "rate": 140, "volume": 0.75, "at": 5.0},  # the same act: counted once
        {"event": "wake", "intent": "another", "at": 9.0},
        {"event": "voice", "change": "slower", "at": 12.0},  # a voice change with no wake event still acted
        {"event": "ignored", "intent": "stop", "reason": "no follow-up window", "at": 14.0},  # not acted: fine
        {"event": "wake", "intent": "tip", "at": 20.0},
        {"event": "done", "at": 60.0},
    ]
    assert strays_from_events(events) == [Stray("louder", 5.0, "wake"), Stray("another", 9.0, "wake"), Stray("slower", 12.0, "voice")]
    assert wakes_from_events(events) == [Wake("tip", 20.0)]


def test_a_stray_command_is_no_wake_and_is_located():
    tip = span("give us a tip", 10.0, 11.0, intent="tip")
    near = span("give us a lesson", 20.0, 21.0, NEAR_MISS)
    events = [{"event": "wake", "intent": "softer", "at": 11.2}, {"event": "wake", "intent": "stop", "at": 20.5}, {"event": "wake", "intent": "faster", "at": 40.0}]
    score = score_events(a_file(tip, near), events)
    assert [t.outcome for t in score.triggers] == [MISSED]  # "softer" on a tip is not a wrong intent: it is a stray
    assert score.false_accepts == ()
    assert [(x.stray.intent, x.span.text if x.span else None) for x in score.strays] == [("softer", "give us a tip"), ("stop", "give us a lesson"), ("faster", None)]


def test_stray_commands_are_counted_per_hour_of_ordinary_speech():
    ordinary = a_file(span("Turn the radio up a little louder.", 5.0, 7.0, ORDINARY), kind=ORDINARY_FILE, duration=1800.0)
    espeak_file = AudioFile("e", "e.wav", TRIGGERS_FILE, 60.0, (), "clean", "espeak")
    scored = [
        Scored(RUN, score_events(ordinary, [{"event": "wake", "intent": "louder", "at": 6.0}, {"event": "voice", "change": "louder", "at": 6.0}])),
        Scored(RUN, score_events(a_file(QUESTION), [{"event": "wake", "intent": "repeat", "at": 30.0}])),
        Scored(RUN, score_events(espeak_file, [{"event": "wake", "intent": "stop", "at": 3.0}])),  # a training voice: listed, not counted
    ]
    summary = summarize("fused", "a", scored, (None, "-"))
    assert (summary.stray_commands, summary.stray_commands_ordinary) == (2, 1)
    assert summary.stray_commands_per_hour == pytest.approx(2.0)
    assert [(x["intent"], x["near"], x["in_targets"]) for x in summary.stray_list] == [
        ("louder", "Turn the radio up a little louder.", True), ("repeat", None, True), ("stop", None, False)]
    lines = table_lines([summary])
    assert "NO" in lines["stray commands, all files"] and "n/a" in lines["stray commands, ordinary speech"]  # 0.5 h < 3 h
    assert stray_line(summary).startswith("a stray commands: louder on 'Turn the radio up a little louder.' x1")


# ------------------------------------------------------------------ follow-up commands


def followups_file(*spans: Span, voice: str = "slt") -> AudioFile:
    return AudioFile(f"followups-{voice}-1", "f.wav", FOLLOWUPS_FILE, 60.0, tuple(replace(s, voice=voice) for s in spans), "clean", voice, 1)


def command(text: str, start: float, end: float, intent: str, role: str = FOLLOW_UP) -> Span:
    return Span(text, start, end, role, "slt", "clean", intent)


WAKE = span("ask us a question", 10.0, 11.5)
DEEPER = command("go deeper", 14.0, 15.0, "deeper")
SKIP = command("skip that one", 17.5, 18.5, "skip")
SOFTER = command("speak softer", 21.0, 22.0, "softer")
OUTSIDE_ANOTHER = command("another one", 35.0, 36.0, "another", OUTSIDE)


def test_a_follow_up_is_recognised_in_its_window_and_a_command_outside_is_a_stray():
    events = [
        {"event": "ignored", "intent": "another", "reason": "no follow-up window", "at": 2.0},  # heard, rightly not acted on
        {"event": "wake", "intent": "question", "at": 11.8},
        {"event": "wake", "intent": "deeper", "at": 15.3},
        {"event": "wake", "intent": "deeper", "at": 15.9},  # the same command acting twice: the second is a stray
        {"event": "wake", "intent": "stop", "at": 18.9},  # "skip that one" heard as "stop": another command acted
        {"event": "wake", "intent": "softer", "at": 22.0 + TAIL},
        {"event": "voice", "change": "softer", "at": 22.0 + TAIL},  # one act with the wake event
        {"event": "wake", "intent": "repeat", "at": 28.0},  # in a gap
        {"event": "wake", "intent": "another", "at": 36.4},  # said outside any window
    ]
    score = score_events(followups_file(WAKE, DEEPER, SKIP, SOFTER, OUTSIDE_ANOTHER), events)
    assert [t.outcome for t in score.triggers] == [ACCEPTED] and score.false_accepts == ()
    assert [(r.span.text, r.outcome, r.heard) for r in score.follow_ups] == [
        ("go deeper", ACCEPTED, "deeper"), ("skip that one", WRONG_INTENT, "stop"), ("speak softer", ACCEPTED, "softer")]
    assert score.follow_ups[0].delay == pytest.approx(0.3)
    assert [(x.stray.intent, x.stray.at, x.span.role if x.span else None) for x in score.strays] == [
        ("deeper", 15.9, FOLLOW_UP), ("repeat", 28.0, None), ("another", 36.4, OUTSIDE)]


def test_a_follow_up_heard_when_no_window_had_opened_is_counted_apart():
    """The wake phrase before it was missed: the command was heard and rightly ignored. That is
    the wake phrase's miss (scored there), not the command's: out of the follow-up rates."""
    events = [
        {"event": "ignored", "intent": "deeper", "reason": "no follow-up window", "at": 15.3},
        {"event": "ignored", "intent": "another", "reason": "no follow-up window", "at": 36.2},  # outside: heard, not acted on
        {"event": "ignored", "intent": "skip", "reason": "speaking", "at": 18.7},  # any other reason: a miss
    ]
    score = score_events(followups_file(WAKE, DEEPER, SKIP, SOFTER, OUTSIDE_ANOTHER), events)
    assert [r.outcome for r in score.triggers] == [MISSED]
    assert [r.outcome for r in score.follow_ups] == [NO_WINDOW, MISSED, MISSED] and score.strays == ()
    assert score.outside_ignored == (OUTSIDE_ANOTHER,)
    summary = summarize("fused", "a", [Scored(RUN, score)], (None, "-"))
    assert (summary.followups_flite.hits, summary.followups_flite.total) == (0, 2)
    assert (summary.followups_no_window, summary.followups_outside, summary.followups_outside_heard) == (1, 1, 1)
    assert "slt: go deeper -> no window x1" in followup_line(summary)
    assert table_lines([summary])["follow-ups heard, no window (earlier miss)"].split()[-1] == "1"


def test_a_follow_up_heard_after_its_window_is_missed_and_a_stray():
    score = score_events(followups_file(WAKE, DEEPER), [{"event": "wake", "intent": "deeper", "at": DEEPER.end + TAIL + 0.01}])
    assert [r.outcome for r in score.follow_ups] == [MISSED]
    assert [x.stray.intent for x in score.strays] == ["deeper"]
    # a wake phrase heard on a command is a false accept, and the command is missed
    score = score_events(followups_file(WAKE, DEEPER), [{"event": "wake", "intent": "tip", "at": 15.2}])
    assert [r.outcome for r in score.follow_ups] == [MISSED] and [fa.kind for fa in score.false_accepts] == [FA_OTHER]


def test_follow_up_rows_per_intent_per_voice_and_their_targets():
    said = (WAKE, DEEPER, SKIP, SOFTER, OUTSIDE_ANOTHER)
    hits = [{"event": "wake", "intent": "deeper", "at": 15.2}, {"event": "wake", "intent": "skip", "at": 18.7}, {"event": "wake", "intent": "softer", "at": 22.3}]
    scored = [
        Scored(RUN, score_events(followups_file(*said, voice="slt"), hits)),
        Scored(RUN, score_events(followups_file(*said, voice="kal16"), hits[:2] + [{"event": "wake", "intent": "another", "at": 36.1}])),
        Scored(RUN, score_events(followups_file(*said, voice="joe"), [])),  # Piper: its own row, not in the flite target
    ]
    summary = summarize("fused", "fused (default)", scored, (None, "-"))
    assert (summary.followups_flite.hits, summary.followups_flite.total) == (5, 6)
    assert {v: (r.hits, r.total) for v, r in summary.followups_by_voice.items()} == {"kal16": (2, 3), "slt": (3, 3), "joe": (0, 3)}
    assert list(summary.followups_by_voice) == ["kal16", "slt", "joe"]  # the bench's voice order
    assert {i: (r.hits, r.total) for i, r in summary.followups_by_intent.items()} == {"deeper": (2, 2), "skip": (2, 2), "softer": (1, 2)}
    assert list(summary.followups_by_intent) == ["deeper", "skip", "softer"]  # phrases/triggers.toml's order
    assert summary.followups_by_intent_voice["softer"]["joe"].total == 1
    assert (summary.followups_strays, summary.followups_outside, summary.followups_wrong) == (1, 3, 0)
    assert summary.stray_commands == 1  # also among the strays of all files
    assert summary.metric("followups_flite") == pytest.approx(5 / 6) and summary.metric("followups_strays") == 1
    lines = table_lines([summary])
    assert "83.3% 5/6" in lines["follow-ups in window, flite voices"] and "NO" in lines["follow-ups in window, flite voices"]
    assert "0.0% 0/3" in lines["follow-ups in window, Piper joe"]
    assert "50.0% 1/2" in lines["follow-up softer (flite)"]
    assert "1 (3 said outside, 0 heard)" in lines["stray commands, follow-up files"] and "NO" in lines["stray commands, follow-up files"]
    assert followup_line(summary).startswith("fused (default) follow-ups not recognised: ")
    assert "kal16: speak softer -> nothing x1" in followup_line(summary)
    # without follow-up files: no follow-up rows, and the targets are not measured
    plain = summarize("fused", "plain", [Scored(RUN, score_file(a_file(QUESTION), [Wake("question", 11.7)]))], (None, "-"))
    assert not any(label.startswith("follow-up") for label in table_lines([plain]))
    assert plain.metric("followups_flite") is None and plain.metric("followups_strays") is None and followup_line(plain) is None


def test_an_engine_without_the_ritual_shows_dash_for_those_commands():
    said = (WAKE, DEEPER, SOFTER)
    old = summarize("old_engine", "old", [Scored(RUN, score_events(followups_file(*said), [{"event": "wake", "intent": "softer", "at": 22.2}]))], (None, "-"),
                    unknown_intents=frozenset({"deeper"}))
    new = summarize("fused", "new", [Scored(RUN, score_events(followups_file(*said), [{"event": "wake", "intent": "deeper", "at": 15.2}]))], (None, "-"))
    assert old.followups_by_intent["deeper"] is None and old.followups_unknown == ("deeper",)
    assert (old.followups_flite.hits, old.followups_flite.total) == (1, 1)  # over the commands it has
    lines = table_lines([old, new])
    assert lines["follow-up deeper (flite)"].split()[-1] == "-"  # the old engine's column is last
    assert "WORSE" in lines["follow-up softer (flite)"] and "WORSE" not in lines["follow-up deeper (flite)"]
    assert "it has no deeper" in followup_line(old)
    data = summary_json(Manifest(1, {}, ()), [new, old], {})
    assert data["systems"]["old_engine"]["followups_by_intent"]["deeper"] is None
    assert data["targets"]["followups_flite"]["value"] == 0.95 and data["targets"]["followups_strays"]["value"] == 0
    assert data["baseline"] == "old_engine"  # v2 did not run
    assert "follow-up softer (flite)" in data["worse_than_baseline"]


def test_peers_skip_the_follow_up_files_and_kinds_pick_files(tmp_path):
    from bench.measure import System
    from bench.run import only_kinds, subset_note, unknown_intents, files_for

    manifest = Manifest(1, {}, (a_file(QUESTION), followups_file(WAKE, DEEPER)))
    assert [f.kind for f in files_for(PROGRAM, manifest)] == [TRIGGERS_FILE, FOLLOWUPS_FILE]
    assert [f.kind for f in files_for(KWS_PEER, manifest)] == [TRIGGERS_FILE]
    assert "not run on the follow-up files" in subset_note(KWS_PEER, manifest) and subset_note(PROGRAM, manifest) is None
    assert unknown_intents(PROGRAM, TABLE) == frozenset()
    (tmp_path / "phrases").mkdir()
    (tmp_path / "phrases" / "triggers.toml").write_text(
        '[intent.question]\nphrases = ["ask us a question"]\n[intent.tip]\nphrases = ["give us a tip"]\n'
        '[intent.stop]\nfollow_up = true\nphrases = ["stop"]\n')
    older = System("old_engine", "old", ("x",), cwd=tmp_path)
    assert unknown_intents(older, TABLE) == frozenset(TABLE.intents) - {"question", "tip", "stop"}
    spec = only_kinds(CorpusSpec(), [FOLLOWUPS_FILE])
    assert (spec.conditions, spec.ordinary_minutes, spec.night_minutes, spec.followup_takes) == ((), 0, 0, 2)
    spec = only_kinds(CorpusSpec(), [TRIGGERS_FILE, NIGHT_FILE])
    assert spec.conditions == CorpusSpec().conditions and spec.night_minutes > 0 and (spec.ordinary_minutes, spec.followup_takes) == (0, 0)


@pytest.mark.audio
@requires_flite
def test_follow_up_file_through_the_real_program(tiny):
    """The tiny corpus's follow-up file (slt, every command once inside a window and once
    outside) through voice-skill run: the layout keeps the commands in live windows."""
    manifest, a, _ = tiny
    (file,) = [f for f in manifest.files if f.kind == FOLLOWUPS_FILE]
    run = run_on_file(PROGRAM.command(a / file.path), file.duration, Sandbox(a.parent / "home"), a.parent / "followups.log")
    assert run.ok, run.stderr_tail
    score = score_events(file, run.events)
    rate = accept_rate(score.follow_ups)
    assert rate.total == len(followup_phrases(TABLE)), score.follow_ups
    in_a_window = [r for r in score.follow_ups if r.outcome != NO_WINDOW]  # a missed wake phrase opens no window
    assert len(in_a_window) >= 0.8 * rate.total and accept_rate(in_a_window).value >= 0.9, [(r.span.text, r.outcome, r.heard) for r in score.follow_ups]
    assert score.strays == (), score.strays
    heard_outside = [e for e in run.events if e.get("event") == "ignored" and e.get("reason") == "no follow-up window"]
    assert len(heard_outside) >= 0.8 * len(file.spans_with(OUTSIDE))  # heard, and rightly not acted on


# ------------------------------------------------------------------ a small slice, real CLI

SLICE = CorpusSpec(
    conditions=("clean",),
    voices=("slt",),
    renditions=1,
    near_misses=("ask him a question", "i have a question", "give it a tip", "tell us a story", "ask her a question", "give us a hand"),
    near_misses_per_file=6,
    held_out=(),  # the program is not held to the held-out list in CI (a target, not a regression)
    held_out_per_file=0,
    ordinary_minutes=0,
    night_minutes=0,
    followup_takes=0,
)


@pytest.fixture(scope="module")
def slice_corpus(tmp_path_factory) -> tuple[Manifest, Path]:
    skip_without_synthesis()
    out = tmp_path_factory.mktemp("bench-slice")
    return build_corpus(SLICE, 3, out / "corpus", out / "cache"), out


@pytest.mark.audio
@requires_flite
def test_regression_slice_through_the_real_program(slice_corpus):
    manifest, out = slice_corpus
    (file,) = manifest.files
    run = run_on_file(PROGRAM.command(out / "corpus" / file.path), file.duration, Sandbox(out / "home"), out / "program.log")
    assert run.ok, run.stderr_tail
    assert run.start_to_listening is not None and run.cpu_seconds > 0 and run.peak_rss_mb > 10
    score = score_file(file, wakes_from_events(run.events))
    rate = accept_rate(score.triggers)
    assert rate.total == 6 and rate.value >= 0.8, [(t.span.text, t.outcome) for t in score.triggers]
    assert [fa for fa in score.false_accepts if fa.kind == FA_NEAR_MISS] == []
    assert not any(t.outcome == WRONG_INTENT for t in score.triggers)


@pytest.mark.audio
@requires_flite
@pytest.mark.parametrize("peer", [KWS_PEER, LM_PEER], ids=lambda p: p.key)
def test_peers_run_and_speak_the_same_events(slice_corpus, peer):
    manifest, out = slice_corpus
    (file,) = manifest.files
    run = run_on_file(peer.command(out / "corpus" / file.path), file.duration, Sandbox(out / "home"), out / f"{peer.key}.log")
    assert run.ok, run.stderr_tail
    assert run.events[0]["event"] == "listening" and run.events[-1]["event"] == "done"
    assert all(e["intent"] in WAKE_INTENTS for e in run.events if e["event"] == "wake")


@requires_espeak
def test_espeak_voice_renders(tmp_path):
    from bench.audio import ESPEAK_VOICE, TRAINING, AudioCache, synthesize

    audio = synthesize("give us a tip", ESPEAK_VOICE, AudioCache(tmp_path))
    assert 0.4 < len(audio) / RATE < 3.0
    assert ESPEAK_VOICE.family == TRAINING and "training family" in ESPEAK_VOICE.title


def test_piper_joe_renders_and_stretches(tmp_path):
    from bench.audio import EVAL, PIPER_VOICE, REFERENCE_DBFS, AudioCache, db_to_gain, piper_missing, speech_rms, synthesize

    if piper_missing():
        pytest.skip(piper_missing())
    cache = AudioCache(tmp_path)
    normal = synthesize("give us a tip", PIPER_VOICE, cache)
    slow = synthesize("give us a tip", PIPER_VOICE, cache, 1.6)  # length_scale 1.6
    assert PIPER_VOICE.family == EVAL
    assert 0.4 < len(normal) / RATE < 2.5 and len(slow) > 1.25 * len(normal)
    assert speech_rms(normal) == pytest.approx(db_to_gain(REFERENCE_DBFS), rel=0.05)
    assert np.array_equal(synthesize("give us a tip", PIPER_VOICE, cache), normal)  # from the cache
    assert len(list(tmp_path.glob("*.wav"))) == 2


_RENDER_IN_A_FRESH_PROCESS = """
import sys
from pathlib import Path
from bench.audio import piper_render
for arg in sys.argv[1:]:
    text, stretch, out = arg.split("|")
    piper_render(text, float(stretch), Path(out))
"""


@pytest.mark.audio
def test_piper_renders_are_the_same_in_two_fresh_processes(tmp_path):
    """Piper's generator noise is seeded (bench.audio.PIPER_SEED), so a new audio cache gives joe
    the same audio. Two processes at once render the same two sentences in opposite orders: a
    render depends on nothing rendered before it."""
    import subprocess

    from bench.audio import piper_missing

    if piper_missing():
        pytest.skip(piper_missing())
    said = [("ask us a question", "1.0"), ("give us a tip", "1.05")]
    jobs = [[f"{text}|{stretch}|{tmp_path / f'{who}-{n}.wav'}" for n, (text, stretch) in enumerate(said)] for who in "ab"]
    procs = [subprocess.Popen([sys.executable, "-c", _RENDER_IN_A_FRESH_PROCESS, *args], cwd=REPO, stderr=subprocess.PIPE, text=True)
             for args in (jobs[0], jobs[1][::-1])]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    for n in range(len(said)):
        first, second = read_mono16k(tmp_path / f"a-{n}.wav"), read_mono16k(tmp_path / f"b-{n}.wav")
        assert len(first) > RATE // 2 and np.array_equal(first, second), said[n]


def test_dev_corpus_uses_dev_voices_and_dev_texts(tmp_path):
    from bench.audio import DEV, dev_voices, dev_voices_missing, voice_named

    if dev_voices_missing():
        pytest.skip(dev_voices_missing())
    first = dev_voices()[0]
    spec = replace(CorpusSpec.dev(voices=(first.name,), quick=True), conditions=("runon",), near_misses_per_file=2, ordinary_minutes=0.2, ordinary_chunk_minutes=0.2, night_minutes=0, followup_takes=0)
    manifest = build_corpus(spec, 1, tmp_path / "corpus", tmp_path / "cache")
    assert voice_named(first.name).family == DEV
    spans = [s for f in manifest.files for s in f.spans]
    assert {s.voice for s in spans} == {first.name}
    dev_texts = set(text_lines(DEV_SENTENCES)) | set(text_lines(DEV_NEAR_MISSES)) | set(text_lines(DEV_LEADINS))
    assert all(s.text in dev_texts for s in spans if s.role != TRIGGER)
    assert not any(s.group == HELD_OUT for s in spans)


# ------------------------------------------------------------------ systems side by side


@pytest.mark.parametrize("past", ["old_engine", "v2"])
def test_a_past_program_runs_from_a_worktree_made_once_that_imports_its_own_code(tmp_path, past):
    from bench.measure import PAST_PROGRAMS, Unavailable, ensure_old_engine, ensure_worktree, git, imported_from, past_program

    program = next(p for p in PAST_PROGRAMS if p.key == past)
    if not git("rev-parse", "--verify", "--quiet", f"{program.commit}^{{commit}}"):
        pytest.skip(f"git history lacks {program.commit} (a shallow clone)")
    path = tmp_path / program.folder
    try:
        system, line = past_program(program, path, tmp_path / "sandbox")
        assert git("rev-parse", "HEAD", cwd=path).startswith(program.commit)
        assert imported_from(system, tmp_path / "sandbox") == path.resolve() and str(path.resolve()) in line
        assert system.cwd == path.resolve() and system.first_on_path == (str(path.resolve()),)
        assert (system.key, system.label) == (program.key, f"{program.name} {program.commit}")
        assert ensure_worktree(path, program.commit) == path.resolve()  # reused, not made again
        if past == "old_engine":
            assert ensure_old_engine(path) == path.resolve()  # as training.tune_fusion calls it
        git("checkout", "--quiet", "--detach", "HEAD~1", cwd=path)
        with pytest.raises(Unavailable, match=f"not {program.commit}"):
            ensure_worktree(path, program.commit)
    finally:
        git("worktree", "remove", "--force", str(path))
    assert str(path) not in git("worktree", "list")
    with pytest.raises(Unavailable, match="no commit 0000000"):
        ensure_worktree(tmp_path / "none", "0000000")


def test_systems_without_their_wake_signals_choice_are_skipped_with_a_reason():
    from bench.measure import JUDGE, NEURAL, PHONETIC, wake_signals_missing
    from bench.run import pick_systems

    notes: list[str] = []
    systems, skipped = pick_systems(["phonetic", "neural", "judge", "fused", "kws_peer", "lm_peer"], notes)
    for system in (PHONETIC, NEURAL, JUDGE):
        why = wake_signals_missing(system.key)
        assert (system in systems) == (why is None)
        assert skipped.get(system.key) == why
    assert [s.key for s in systems][-3:] == ["fused", "kws_peer", "lm_peer"]
    assert JUDGE.argv[-2:] == ("--wake-signals", "judge") and JUDGE.label == "judge alone"


def test_wake_signal_choices_are_read_from_the_help_text():
    from bench.measure import wake_signal_choices, wake_signals_missing

    v2_help = """usage: voice-skill run [-h] [--engine {auto,vosk,pocketsphinx}]
                       [--wake-signals {fused,phonetic,neural}]
  --wake-signals {fused,phonetic,neural}
                        PocketSphinx wake engine: fuse both signals (default)"""
    assert wake_signal_choices(v2_help) == ("fused", "phonetic", "neural")
    assert wake_signal_choices("usage: voice-skill run [-h] [--engine {auto,vosk}]") is None
    assert wake_signals_missing("judge", "usage: voice-skill run [-h]") == "voice-skill run has no --wake-signals option yet"
    assert wake_signals_missing("judge", v2_help) == "voice-skill run --wake-signals does not offer 'judge' yet (it offers fused, phonetic, neural)"
    assert wake_signals_missing("neural", v2_help) is None
    # 'judge' in the help's prose is not a choice; a new choice is
    assert wake_signals_missing("judge", v2_help + " (the judge decides)") is not None
    assert wake_signals_missing("judge", v2_help.replace("neural}", "neural,judge}")) is None


def test_system_names_for_the_command_line():
    from bench.run import ALL_SYSTEMS, SHORT_NAMES

    assert {n: SHORT_NAMES[n] for n in ("old", "v2", "phonetic", "neural", "judge", "fused", "v3", "kws", "lm")} == {
        "old": "old_engine", "v2": "v2", "phonetic": "phonetic", "neural": "neural", "judge": "judge",
        "fused": "fused", "v3": "fused", "kws": "kws_peer", "lm": "lm_peer"}
    assert all(SHORT_NAMES[key] == key for key in ALL_SYSTEMS)
    assert PROGRAM.key == "fused" and PROGRAM.label == "v3 (--judge)" and PROGRAM.argv[-1] == "--judge"


def test_the_lm_peer_hears_a_documented_subset_and_the_estimate_adds_up(tmp_path):
    import json

    from bench.measure import LM_PEER
    from bench.run import RTF_GUESS, START_GUESS, Task, estimate, files_for, subset_note

    parts = [AudioFile(f"ordinary-slt-{k}", "x.wav", ORDINARY_FILE, 600.0, (), "ordinary", "slt", k) for k in (1, 2, 3)]
    fan = AudioFile("triggers-fan5-slt", "y.wav", TRIGGERS_FILE, 60.0, (), "fan5", "slt")
    manifest = Manifest(1, {}, (a_file(QUESTION), fan, *parts))
    assert [f.name for f in files_for(LM_PEER, manifest)] == ["f", "ordinary-slt-1"]
    assert files_for(PROGRAM, manifest) == list(manifest.files) and subset_note(PROGRAM, manifest) is None
    assert "parts 1..1 only (0.17 of 0.50 h" in subset_note(LM_PEER, manifest) and "fan5" in subset_note(LM_PEER, manifest)
    jobs = min(2, os.cpu_count() or 1)
    seconds, source = estimate([Task(PROGRAM, f) for f in manifest.files], 2, tmp_path / "none.json")
    guess = RTF_GUESS["fused"]
    assert source == "guesses" and seconds == pytest.approx((120 * guess["triggers"] + 1800 * guess["ordinary"] + 5 * START_GUESS) / jobs)
    (tmp_path / "summary.json").write_text(json.dumps({"systems": {"fused": {"rtf_triggers": 0.1, "rtf_speech": 0.2, "rtf_night": None}}}))
    seconds, source = estimate([Task(PROGRAM, f) for f in manifest.files], 2, tmp_path / "summary.json")
    assert "last run" in source and seconds == pytest.approx((120 * 0.1 + 1800 * 0.2 + 5 * START_GUESS) / jobs)
