"""The benchmark (bench/): corpus builder, scorer, report, and a small slice through the real CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `pytest` without `python3 -m` does not put the repo root on the path
    sys.path.insert(0, str(REPO))

from bench.audio import RATE, read_mono16k  # noqa: E402
from bench.corpus import (  # noqa: E402
    NEAR_MISSES,
    WAKE_INTENTS,
    CorpusSpec,
    always_on_phrases,
    build_corpus,
    contains_phrase,
    ordinary_sentences,
    trigger_table,
    trigger_text_in,
    wake_phrases,
)
from bench.manifest import NEAR_MISS, NIGHT_FILE, ORDINARY, ORDINARY_FILE, TRIGGER, TRIGGERS_FILE, AudioFile, Manifest, Span  # noqa: E402
from bench.measure import KWS_PEER, LM_PEER, PROGRAM, Run, Sandbox, run_on_file  # noqa: E402
from bench.report import Scored, format_table, near_miss_line, summarize  # noqa: E402
from bench.score import (  # noqa: E402
    ACCEPTED,
    FA_DUPLICATE,
    FA_NEAR_MISS,
    FA_ORDINARY,
    FA_OTHER,
    MISSED,
    TAIL,
    WRONG_INTENT,
    Totals,
    Wake,
    accept_rate,
    delay_stats,
    percentile,
    score_file,
    wakes_from_events,
)
from audio_factory import have, rms  # noqa: E402
from conftest import requires_espeak, requires_flite  # noqa: E402

TABLE = trigger_table()

# ------------------------------------------------------------------ corpus text


def test_no_trigger_text_in_ordinary_sentences_or_near_misses():
    assert trigger_text_in(list(NEAR_MISSES) + ordinary_sentences(), always_on_phrases(TABLE)) == []


def test_the_trigger_check_itself_finds_a_trigger():
    assert contains_phrase("Okay, ask us a question, please!", "ask us a question")
    assert not contains_phrase("Let's ask us a questionnaire", "ask us a question")
    assert trigger_text_in(["Then give us a tip."], ["give us a tip"]) == [("Then give us a tip.", "give us a tip")]


def test_corpus_text_is_big_and_varied_enough():
    sentences = ordinary_sentences()
    assert len(sentences) >= 300 and len(set(sentences)) == len(sentences)
    assert {"ask him a question", "i have a question", "give it a tip", "tell us a story"} <= set(NEAR_MISSES)
    assert len(NEAR_MISSES) >= 16 and len(set(NEAR_MISSES)) == len(NEAR_MISSES)
    mentions = [s for s in sentences if any(w in s.lower() for w in ("question", "tip", "ask", "give"))]
    assert len(mentions) >= 20  # questions, tips, asking and giving, in ordinary ways


def test_the_full_corpus_covers_the_issue():
    spec = CorpusSpec()
    assert set(spec.conditions) == {"clean", "soft", "reverb", "fan10", "fan5", "tempo0.9", "tempo1.1"}
    assert set(spec.voices) == {"kal16", "slt", "rms", "awb", "espeak"}
    assert spec.ordinary_minutes >= 20 and 20 <= spec.night_minutes <= 30
    assert {intent for _, intent in wake_phrases(TABLE)} == set(WAKE_INTENTS)


# ------------------------------------------------------------------ corpus builder

def skip_without_synthesis() -> None:
    if not (have("flite") and have("sox")):
        pytest.skip("flite and sox are needed to build a corpus (apt-get install flite sox)")


TINY = CorpusSpec(
    conditions=("clean", "fan10"),
    voices=("slt",),
    renditions=1,
    near_misses_per_file=3,
    ordinary_minutes=0.25,
    night_minutes=1.0,
    night_phrases=3,
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
    assert {f.kind for f in manifest.files} == {TRIGGERS_FILE, ORDINARY_FILE, NIGHT_FILE}
    for f in manifest.files:
        audio = read_mono16k(a / f.path)
        assert abs(len(audio) / RATE - f.duration) < 0.01
        for span in f.spans:
            assert 0 < span.start < span.end <= f.duration, (f.name, span)
        if f.kind != ORDINARY_FILE:  # scoring windows of phrases never overlap
            for before, after in zip(f.spans, f.spans[1:]):
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
    assert [f.name for f in triggers] == ["triggers-clean-slt", "triggers-fan10-slt"]
    for f in triggers:
        said = sorted((s.text, s.intent) for s in f.spans_with(TRIGGER))
        assert said == sorted(wake_phrases(TABLE)) * TINY.renditions
        assert len(f.spans_with(NEAR_MISS)) == TINY.near_misses_per_file
        assert all(s.intent is None and s.text in NEAR_MISSES for s in f.spans_with(NEAR_MISS))
    ordinary = [f for f in manifest.files if f.kind == ORDINARY_FILE]
    assert all(s.role == ORDINARY for f in ordinary for s in f.spans)
    assert sum(f.duration for f in ordinary) >= TINY.ordinary_minutes * 60
    night = next(f for f in manifest.files if f.kind == NIGHT_FILE)
    assert night.duration == TINY.night_minutes * 60 and len(night.spans) == TINY.night_phrases


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


def test_table_shows_targets_and_whether_they_are_met():
    file = a_file(QUESTION, span("ask him a question", 20.0, 21.0, NEAR_MISS))
    run = Run("s", "f", 60.0, ({"event": "listening", "engine": "x"}, {"event": "done"}), 0.6, 100.0, 1.0, 0.5, 0)
    good = summarize("a", "good", [Scored(run, score_file(file, [Wake("question", 11.7)]))], (None, "not measured"))
    bad = summarize("b", "bad", [Scored(run, score_file(file, [Wake("question", 20.5)]))], (None, "-"))
    table = format_table([good, bad])
    lines = {line.split("  ")[0]: line for line in table.splitlines()}
    assert "100.0% 1/1" in lines["TA clean (flite)"] and "yes" in lines["TA clean (flite)"]
    assert "1 of 1" in lines["near-miss false accepts"] and "0 of 1" in lines["near-miss false accepts"]
    assert "not measured" in lines["detection to first audio"]
    assert good.rtf_triggers == pytest.approx(0.01)
    assert near_miss_line(bad) == "bad false accepts: ask him a question -> question x1"


def test_near_misses_not_in_the_decoy_list_are_counted_apart():
    file = a_file(QUESTION, span("ask him a question", 20.0, 21.0, NEAR_MISS), span("ask us anything", 30.0, 31.0, NEAR_MISS))
    run = Run("s", "f", 60.0, ({"event": "listening", "engine": "x"}, {"event": "done"}), 0.6, 100.0, 1.0, 0.5, 0)
    wakes = [Wake("question", 11.7), Wake("question", 20.5), Wake("question", 30.5)]
    summary = summarize("a", "a", [Scored(run, score_file(file, wakes))], (None, "-"), frozenset({"ask him a question"}))
    assert (summary.near_miss_false_accepts, summary.near_misses) == (2, 2)
    assert (summary.held_out_near_miss_false_accepts, summary.held_out_near_misses) == (1, 1)
    line = next(x for x in format_table([summary]).splitlines() if x.startswith("  of which not in decoy list"))
    assert "1 of 1" in line


# ------------------------------------------------------------------ a small slice, real CLI

SLICE = CorpusSpec(
    conditions=("clean",),
    voices=("slt",),
    renditions=1,
    near_misses=("ask him a question", "i have a question", "give it a tip", "tell us a story", "ask her a question", "give us a hand"),
    near_misses_per_file=6,
    ordinary_minutes=0,
    night_minutes=0,
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
    from bench.audio import ESPEAK_VOICE, AudioCache, synthesize

    audio = synthesize("give us a tip", ESPEAK_VOICE, AudioCache(tmp_path))
    assert 0.4 < len(audio) / RATE < 3.0
