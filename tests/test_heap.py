"""voice_skill/heap.py: what an answer left in the C heap goes back to the system (glibc)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PATTERN = """
import sys
import numpy as np
from voice_skill.heap import give_back
def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
keep = []
del_me = np.ones(8 << 20, np.uint8); del del_me   # a big block freed: glibc raises its threshold
before = rss()
for i in range(40):                                 # answers: a large buffer each (each longer), freed, while small things stay
    block = np.ones((1 << 20) + i * (64 << 10), np.uint8)
    keep.append(bytes(1000 + i))                    # small, but too big for Python's own allocator: in the C heap
    del block
    if sys.argv[1] == "given back":
        assert give_back()
print(rss() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_what_an_answer_freed_goes_back_to_the_system():
    """The same allocations with glibc's moving threshold keep megabytes in the heap; given
    back after each answer, what is freed is returned."""
    grown = {how: float(subprocess.run([sys.executable, "-c", PATTERN, how], capture_output=True, text=True, check=True).stdout)
             for how in ("kept", "given back")}
    assert grown["given back"] < 1.0, grown
    assert grown["kept"] > 3.0, grown  # the pattern does show what the fix is for
