"""Stopping a search cleanly on SIGINT (Ctrl+C) and SIGTERM (``docker stop``, systemd, ``kill``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StopRequest:
    """Set by SIGINT or SIGTERM while the driver loop runs; the loop stops at its next safe point.

    A ``KeyboardInterrupt`` raised wherever the signal lands could cut a storage call short between
    taking and releasing a lock of the database driver, and the clean-up that follows would then
    wait forever. So the first signal only asks for a stop, which the loop carries out between
    events (with the in-process executor: after the current epoch); a second signal stops at once.
    """

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` here, a safe point, if a stop was asked for."""
        if self.requested:
            raise KeyboardInterrupt


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Within the block SIGINT (Ctrl+C) and SIGTERM (``docker stop``, systemd, ``kill``) request a stop
    (see :class:`StopRequest`). ``ray.init`` sets its own SIGTERM handler (exit at once), so this is
    entered after the executor has started."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
