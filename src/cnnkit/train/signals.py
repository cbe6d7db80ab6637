"""SIGTERM/SIGINT as a polite stop request: the training loop finishes its step, saves a checkpoint and
exits with :data:`RESUMABLE_EXIT_CODE`. A second SIGINT (Ctrl-C twice) interrupts at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["RESUMABLE_EXIT_CODE", "StopFlag", "handle_stop_signals"]

# EX_TEMPFAIL from sysexits.h: "temporary failure; the user is invited to retry" - here, to resume.
RESUMABLE_EXIT_CODE = 75


class StopFlag:
    """Set by a signal handler or by :meth:`request`; read by the training loop after each step."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None

    def request(self, reason: str = "request") -> None:
        self.requested = True
        self.signal_name = self.signal_name or reason


@contextmanager
def handle_stop_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """Install SIGTERM/SIGINT handlers that set ``flag`` (main thread only), restoring the old ones after."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and flag.requested:
            raise KeyboardInterrupt
        flag.request(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
