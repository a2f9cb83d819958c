"""The C heap of the long-running program.

glibc serves a freed large block's size from the heap from then on (its mmap threshold rises
with every large block freed, up to 32 MB), so the answers' audio, its resampled copies and
the echo canceller's correlations, freed after each answer, stay in a fragmented heap: the
live program grew by 8 MB over its first five answers in the virtual room.

That growth is given back after each answer (`give_back`: glibc's malloc_trim, which returns
every free page of the heap to the system, not only its top). An earlier fix, a fixed mmap
threshold, mapped every large block on its own and unmapped it when freed: with the judge
(judging.py), whose every call allocates and frees tens of megabytes in large blocks, that
cost more system time than the judge's own work (about 0.37 CPU s of page faults per call
against 0.5 s of computing), where glibc's moving threshold costs 0.03.
"""

from __future__ import annotations

import ctypes
import sys


def give_back() -> bool:
    """Return the C heap's free pages to the system (after an answer: the next may be an
    hour away). False (and nothing done) where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        return True
    except (OSError, AttributeError):  # another C library (musl), or no malloc_trim
        return False
