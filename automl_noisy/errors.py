"""Errors a user can fix. The CLI prints their message as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: a file, a flag, a YAML document, a dataset.

    The message names the problem and, where there is one, the fix. It must fit on one line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def choose_from(kind: str, given: object, valid: list[str] | tuple[str, ...]) -> UserError:
    """The error for a name that is not one of ``valid``: it lists the valid choices."""
    return UserError(f"unknown {kind} {given!r}; choose one of: {', '.join(valid)}")


def shorten(text: object, limit: int = 300) -> str:
    """``text`` on one line, cut at a word boundary with ``...`` when longer than ``limit``, so a
    quoted message never ends mid-word without saying so.

    >>> shorten("a long message from a library", 20)
    'a long message ...'
    """
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit - 4].rsplit(" ", 1)[0] if " " in flat[:limit - 4] else flat[:limit - 4]
    return f"{cut} ..."


class UserValueError(UserError, ValueError):
    """A user mistake met by :class:`~automl_noisy.NoisyLabelSearch` or another scikit-learn-shaped
    entry point: still a :class:`UserError`, and the ``ValueError`` scikit-learn's conventions expect
    for bad input (NaN, a wrong number of features, data too small, a bad parameter)."""
