"""The ``automl-noisy`` command. Imports are lazy: ``--help`` loads neither torch nor ray. Where
things are: ``main`` (running a sub-command; errors as one line and an exit code) is in
:mod:`~automl_noisy.cli.entry`; the argument parser in :mod:`~automl_noisy.cli.parser`, with its
shared flag groups in :mod:`~automl_noisy.cli.data_flags` (flags to a ``DataSpec``) and
:mod:`~automl_noisy.cli.storage_flags`, and its value types in :mod:`~automl_noisy.cli.arg_types`;
the sub-commands in :mod:`~automl_noisy.cli.search_commands` (search, export, effects, report,
dashboard), :mod:`~automl_noisy.cli.model_commands` (train, predict) and
:mod:`~automl_noisy.cli.listing` (components, presets); ``python -m automl_noisy.cli`` runs
:mod:`~automl_noisy.cli.__main__`."""

from __future__ import annotations

from automl_noisy.cli.entry import main
from automl_noisy.cli.parser import build_parser

__all__ = ["build_parser", "main"]
