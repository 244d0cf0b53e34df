"""Sizes automl-noisy refuses before it allocates anything: each limit is checked on the numbers a
user gives (a flag, a file's header, a model card) before an array of that size is made, so a typo
such as ``--samples 1000000000000`` is one line, not an exhausted machine.

>>> check_values(3 * 32 * 32, MAX_SAMPLE_VALUES, "one image of 3x32x32 pixels", "use smaller images")
>>> check_values(10**12, MAX_SAMPLE_VALUES, "one sample of shape (1000000000000,)", "train the model again")
Traceback (most recent call last):
    ...
automl_noisy.errors.UserError: one sample of shape (1000000000000,) holds 1e+12 values, more than the limit of 16,777,216; train the model again
"""

from __future__ import annotations

from automl_noisy.errors import UserError

#: Most columns a CSV or parquet file may have; wider files are refused from their header alone.
MAX_COLUMNS = 50_000
#: Most values one sample may hold (the product of its shape: features, or channels x height x width).
MAX_SAMPLE_VALUES = 2**24
#: Most float32 values a decoded data set may hold (n x channels x size x size for an image folder): 4 GiB.
MAX_DATA_VALUES = 2**30
#: Most ``samples x features x classes`` synthetic data may have (bounds its features, a score per
#: sample and class, and instance noise's class x feature x class weights alike).
MAX_SYNTHETIC_SIZE = 2**28
#: Largest ``model.json`` read, in bytes.
MAX_CARD_BYTES = 256 * 2**20


def check_values(count: int, limit: int, what: str, fix: str) -> None:
    """A UserError when ``what`` would hold more than ``limit`` values; ``fix`` says what to do."""
    if count > limit:
        raise UserError(f"{what} holds {count:.3g} values, more than the limit of {limit:,}; {fix}")
