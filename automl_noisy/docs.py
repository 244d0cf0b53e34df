"""Plain text from docstrings, for the command line: a docstring's first sentence, whole, without
reStructuredText markup.

>>> first_sentence('''Co-teaching (Han et al., NeurIPS 2018): two networks, each trains on the
...     samples its peer ``selects``. The rest.''')
'Co-teaching (Han et al., NeurIPS 2018): two networks, each trains on the samples its peer selects.'
>>> first_sentence("See :class:`~automl_noisy.pipeline.Pipeline` and *this*, e.g. here.")
'See Pipeline and this, e.g. here.'
"""

from __future__ import annotations

import re

#: words ending in a full stop that do not end a sentence
ABBREVIATIONS = ("al", "e.g", "i.e", "cf", "vs", "etc", "Eq", "Fig", "No", "resp", "approx")

_ROLE = re.compile(r":[a-z]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")  # :class:`~a.b.C` -> a.b.C (shortened below)
_LITERAL = re.compile(r"``(.*?)``")
_EMPHASIS = re.compile(r"\*\*?([^*\s][^*]*?)\*\*?")
_INTERPRETED = re.compile(r"`([^`]+)`_?")
_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")


def plain(text: str) -> str:
    """``text`` without reST roles, literals and emphasis, on one line."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1] if m.group(0).startswith(":") and "~" in m.group(0)
                     else m.group(1), text)
    text = _LITERAL.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = _INTERPRETED.sub(r"\1", text)
    return " ".join(text.split())


def first_sentence(doc: str | None) -> str:
    """The first sentence of ``doc``'s first paragraph, whole and plain (see :func:`plain`)."""
    paragraph = (doc or "").strip().split("\n\n", 1)[0]
    text = plain(paragraph)
    for match in _END.finditer(text):
        before = text[:match.start()]
        word = before.rsplit(" ", 1)[-1].rstrip(".!?")
        if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):  # "al.", an initial "J."
            continue
        return before
    return text
