"""Storage credentials: where a storage URL comes from, and keeping its password out of everything
the driver hands on (Ray's job table, the environment of Ray's processes, messages).

A command line is visible to every user of a machine (``ps``) and Ray stores the driver's in its job
table, so a URL with a password belongs in the environment variable ``AUTOML_NOISY_STORAGE`` or in a
file (``--storage-file``, e.g. a Docker secret). Whatever the source, the Ray executor's
``hidden_from_ray`` keeps the password (:func:`secrets_of`) out of what Ray records and of the
environment its local processes inherit.

>>> secrets_of("postgresql+psycopg2://ann:p%40ss@db/studies")
('p@ss', 'p%40ss')
>>> hide("--storage postgresql+psycopg2://ann:p%40ss@db/studies", secrets_of("postgresql://ann:p%40ss@db"))
'--storage postgresql+psycopg2://ann:***@db/studies'
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from automl_noisy.errors import UserError

#: the environment variable a storage URL is read from when no flag gives one
STORAGE_ENV = "AUTOML_NOISY_STORAGE"
DEFAULT_STORAGE = "sqlite:///automl-noisy.db"
#: the most a storage file may hold: a URL, not a data file named by mistake
MAX_STORAGE_FILE_BYTES = 64 * 1024


def storage_url(given: str | None = None, file: str | None = None) -> str:
    """The storage URL: ``given`` (``--storage``), else the first line of ``file`` (``--storage-file``),
    else ``$AUTOML_NOISY_STORAGE``, else the SQLite file ``automl-noisy.db`` in the working folder."""
    if given is not None:
        return given
    if file is not None:
        return _read_storage_file(file)
    return os.environ.get(STORAGE_ENV, "").strip() or DEFAULT_STORAGE


def _read_storage_file(path: str) -> str:
    if not os.path.exists(path):
        raise UserError(f"storage file not found: {path}")
    if not os.path.isfile(path):
        raise UserError(f"storage file {path} is not a regular file; give a file whose first line is the URL")
    try:
        with open(path, "rb") as f:
            head = f.read(MAX_STORAGE_FILE_BYTES + 1)
    except OSError as e:
        raise UserError(f"cannot read storage file {path}: {e.strerror or e}") from None
    if len(head) > MAX_STORAGE_FILE_BYTES:
        raise UserError(f"storage file {path} is larger than {MAX_STORAGE_FILE_BYTES // 1024} KiB; "
                        "it should hold one line, the storage URL")
    try:
        lines = head.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"storage file {path} is not UTF-8 text; it should hold one line, the storage URL") from None
    url = lines[0].strip() if lines else ""
    if not url:
        raise UserError(f"storage file {path} is empty; its first line should be the storage URL")
    return url


def secrets_of(url: str) -> tuple[str, ...]:
    """What of ``url`` must not leave the driver: its password, as it is and as the URL spells it
    (percent-encoded); none for a URL without a password."""
    from urllib.parse import quote

    try:
        from sqlalchemy.engine import make_url

        password = make_url(url).password
    except Exception:  # not a URL SQLAlchemy reads: nothing it would send anywhere
        return ()
    if not password:
        return ()
    return tuple(dict.fromkeys((str(password), quote(str(password), safe=""))))


def hide(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, "***")
    return text
