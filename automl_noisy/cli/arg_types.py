"""Argument types of the ``automl-noisy`` command: argparse ``type=`` callables that turn a flag's
text into a checked value (an integer in a range, a duration, a thread count, a port) or refuse it
with an ``argparse.ArgumentTypeError`` whose message becomes the one-line usage error. They import
nothing heavy, so ``--help`` stays light."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def _int_in(low: int, high: int | None, rule: str) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high`` (no upper bound when None); ``rule``
    says so in the error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{rule}, got {value}")
        return value
    return parse


_positive_int = _int_in(1, None, "must be at least 1")


def _duration(text: str) -> float:
    """An argparse type: a positive duration, ``90``, ``90s``, ``5m``, ``1.5h`` (seconds when no unit)."""
    import math

    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}; use e.g. 90s, 5m or 1.5h") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be more than 0, got {text!r}")
    return seconds


def _threads(text: str) -> int:
    """An argparse type: 1 to this machine's CPU count."""
    import os

    cpus = os.cpu_count() or 1
    return _int_in(1, cpus, f"must be 1 to {cpus}, the CPUs of this machine")(text)
_port = _int_in(0, 65535, "a port is 0 to 65535")
