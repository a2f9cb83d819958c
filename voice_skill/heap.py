"""The C heap of the long-running program.

glibc serves a freed large block's size from the heap from then on (its mmap threshold rises
with every large block freed, up to 32 MB), so the answers' audio, its resampled copies and
the echo canceller's correlations, freed after each answer, stay in a fragmented heap: the
live program grew by 8 MB over its first five answers in the virtual room. With a fixed
threshold, blocks of LARGE bytes or more are mapped on their own and go back to the system
when freed (5-8 MB less after five answers, measured with /proc/PID/smaps). Small blocks,
the audio chunks among them, are unaffected.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's <malloc.h>
LARGE = 128 * 1024  # bytes: glibc's default threshold, kept fixed


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold at LARGE for this process. False (and nothing changed)
    where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, LARGE))
    except (OSError, AttributeError):  # another C library (musl), or no mallopt
        return False
