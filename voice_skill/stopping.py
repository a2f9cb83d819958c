"""Stopping the program on SIGTERM and SIGINT without taking a lock in the signal handler.

Python runs a signal handler in the main thread between two of its bytecodes, which may be
while that thread holds a lock that stopping needs (the microphone queue's, an event's):
taken again from the handler, it waits forever, and `systemctl stop` or Ctrl-C hangs. So the
handler only puts the signal on a SimpleQueue (whose put is safe there), and a thread of its
own does the stopping, as an ordinary thread that may wait for a lock.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals(stop: Callable[[], None], signals: Iterable[signal.Signals] = STOP_SIGNALS) -> None:
    """From now on each of these signals calls `stop` (from another thread; it may be called
    more than once). Call from the main thread."""
    requests: queue.SimpleQueue[int] = queue.SimpleQueue()

    def stopper() -> None:
        while True:
            signum = requests.get()
            log.info("%s: stopping", signal.Signals(signum).name)
            stop()

    threading.Thread(target=stopper, name="stop-on-signal", daemon=True).start()

    def on_signal(signum: int, frame) -> None:
        requests.put(signum)

    for signum in signals:
        signal.signal(signum, on_signal)
