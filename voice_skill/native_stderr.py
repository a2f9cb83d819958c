"""Lines that native libraries write straight to stderr (file descriptor 2), past Python's
logging: TensorFlow Lite's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on every
start (pyopen-wakeword's libtensorflowlite_c.so has no switch for it: it reads no
TF_CPP_MIN_LOG_LEVEL and exports no log-level call), Kaldi's "ERROR (VoskAPI...)" before a
damaged Vosk model is refused.

quiet_native_stderr() points fd 2 at a temporary file while a call runs, then passes on every
line it does not drop; the dropped ones go to the debug log (-v shows them).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


def _flush_c_stdio() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextmanager
def quiet_native_stderr(drop: Callable[[str], bool], what: str) -> Iterator[None]:
    """While the body runs, whatever is written to fd 2 (by native code, or by Python) is held
    back; afterwards the lines `drop` accepts are logged at debug level (as from `what`) and
    the rest are written to stderr as they were. Where fd 2 cannot be redirected the body
    runs unfiltered."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
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
            held.seek(0)
            passed = []
            for line in held.read().decode("utf-8", "replace").splitlines(keepends=True):
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
