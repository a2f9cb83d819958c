"""A 10-minute simulated night through the real program (bench/soak.py runs the 8-hour one)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import requires_flite

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soak import plan_night, soak  # noqa: E402


def test_plan_spreads_wakes_and_keeps_conversation_clear_of_them():
    night = plan_night(8 * 3600, seed=7)
    assert 44 <= len(night.wakes) <= 52
    assert night.conversation
    for talk in night.conversation:
        assert all(abs(talk.start - w.start) > 45 for w in night.wakes)
    assert plan_night(8 * 3600, seed=7).wakes == night.wakes  # deterministic


@requires_flite
def test_ten_minute_night(tmp_path, audio_cache):
    result = soak(10, seed=3, wake_every=90, cache=audio_cache, workdir=tmp_path)
    print(result)
    assert result.exit_code == 0
    assert result.wakes_expected >= 6
    assert result.wakes_answered == result.wakes_expected
    assert result.false_wakes == 0
    assert result.real_time_factor < 0.2
    assert 20 < result.peak_rss_mb < 350  # the program's own peak (the memory budget), not another test's child
