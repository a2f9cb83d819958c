"""SIGTERM and SIGINT stop the program even when they arrive while the main thread holds a
lock that stopping needs (the microphone queue's): the handler takes no lock."""

import os
import signal
import threading
import time

from voice_skill.stopping import stop_on_signals


def test_a_signal_while_the_main_thread_holds_the_lock_that_stopping_takes():
    lock = threading.Lock()
    stopped = threading.Event()

    def stop():
        with lock:
            stopped.set()

    previous = signal.getsignal(signal.SIGUSR1)
    try:
        stop_on_signals(stop, signals=(signal.SIGUSR1,))
        with lock:
            os.kill(os.getpid(), signal.SIGUSR1)  # its handler runs in this thread, the lock held
            time.sleep(0.3)
            assert not stopped.is_set()  # the stopping waits for the lock...
        assert stopped.wait(2)  # ...and happens once it is free
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_every_signal_asks_again():
    calls = []
    previous = signal.getsignal(signal.SIGUSR2)
    try:
        stop_on_signals(lambda: calls.append(time.monotonic()), signals=(signal.SIGUSR2,))
        for _ in range(2):
            os.kill(os.getpid(), signal.SIGUSR2)
            time.sleep(0.2)
        assert len(calls) == 2
    finally:
        signal.signal(signal.SIGUSR2, previous)
