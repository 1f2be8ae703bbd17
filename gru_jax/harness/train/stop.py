"""How a run is stopped from outside: the signals that checkpoint and stop it, and the
exception the trainer raises after saving."""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)  # checkpoint and stop (see StopSignal)


class Preempted(Exception):
    """The run stopped on SIGTERM/SIGINT after saving a checkpoint; run it again to resume."""


class StopSignal:
    """Turns the stop signals (default SIGTERM/SIGINT) into a flag the loop polls
    (main thread only); a second signal of the same kind gets the previous handler."""

    def __init__(self, signals=STOP_SIGNALS):
        self.signum = None
        self.signals = tuple(signals)
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum
        signal.signal(signum, self._old.get(signum, signal.SIG_DFL))

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False
