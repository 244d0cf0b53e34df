"""The study-storage flags of the ``automl-noisy`` command: ``--storage``, ``--storage-file`` and
``--study`` as the search, export, effects, report and dashboard sub-commands declare them; where
the storage URL comes from once parsed (``_resolve_storage``); and how ``main`` recognises a
database that refused a write (``_storage_write_refused``). The database modules are imported only
when a command runs, never for ``--help``."""

from __future__ import annotations

import argparse
import sys

DEFAULT_STORAGE = "sqlite:///automl-noisy.db"  # the same as automl_noisy.credentials'
STORAGE_ENV = "AUTOML_NOISY_STORAGE"  # the same as automl_noisy.credentials'


def _storage_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--storage", default=None,
                   help=f"study database, any URL Optuna accepts (default: ${STORAGE_ENV} when it is set, else "
                        f"{DEFAULT_STORAGE}); a URL with a password belongs in ${STORAGE_ENV} or --storage-file, "
                        "since a command line is visible to every user of the machine and in Ray's job table")
    g.add_argument("--storage-file", metavar="FILE",
                   help="read the storage URL from the first line of FILE (e.g. a Docker or Kubernetes secret)")
    p.add_argument("--study", default=None, help="study name (default: derived from data, noise and space)")


def _resolve_storage(args: argparse.Namespace) -> None:
    """Set ``args.storage`` from --storage, --storage-file or $AUTOML_NOISY_STORAGE, in that order."""
    if not hasattr(args, "storage"):
        return
    from automl_noisy.credentials import storage_url

    args.storage = storage_url(args.storage, args.storage_file)


def _storage_write_refused(error: BaseException) -> str | None:
    """What the database said, when ``error`` is a storage that refused a write (see
    :func:`automl_noisy.search.storage.write_refused`); None for any other error."""
    if "sqlalchemy" not in sys.modules:  # no database was opened
        return None
    from automl_noisy.search.storage import write_refused

    return write_refused(error)
