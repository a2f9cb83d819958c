"""Lines that native libraries write straight to stderr (file descriptor 2), past Python's
logging: TensorFlow Lite's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on every
start (pyopen-wakeword's libtensorflowlite_c.so has no switch for it: it reads no
TF_CPP_MIN_LOG_LEVEL and exports no log-level call), Kaldi's "ERROR (VoskAPI...)" before a
damaged Vosk model is refused.

quiet_native_stderr() points fd 2 at a pipe while a call runs, then passes on every line it
does not drop; the dropped ones go to the debug log (-v shows them).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

READ_TIMEOUT = 2.0  # seconds to wait for the last held-back lines after the call


def _flush_c_stdio() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextmanager
def quiet_native_stderr(drop: Callable[[str], bool], what: str) -> Iterator[None]:
    """While the body runs, whatever is written to fd 2 (by native code, or by Python) is held
    back in memory (a pipe read by a thread: nothing is written to disk); afterwards the lines
    `drop` accepts are logged at debug level (as from `what`) and the rest are written to
    stderr as they were. Where fd 2 cannot be redirected the body runs unfiltered."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    read_end, write_end = os.pipe()
    chunks: list[bytes] = []

    def drain() -> None:
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)

    reader = threading.Thread(target=drain, name="native-stderr", daemon=True)
    reader.start()
    os.dup2(write_end, 2)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        _flush_c_stdio()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(write_end)
        reader.join(READ_TIMEOUT)  # a child started meanwhile may hold the pipe open: not forever
        if not reader.is_alive():
            os.close(read_end)
        passed = []
        for line in b"".join(chunks).decode("utf-8", "replace").splitlines(keepends=True):
            if drop(line.rstrip("\n")):
                log.debug("%s: %s", what, line.rstrip())
            else:
                passed.append(line)
        if passed:
            os.write(2, "".join(passed).encode("utf-8", "replace"))


def tflite_info(line: str) -> bool:
    """TensorFlow Lite's information lines ("INFO: Created TensorFlow Lite XNNPACK delegate
    for CPU."); its warnings and errors pass."""
    return line.startswith("INFO: ")
