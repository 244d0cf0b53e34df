"""Study storage: open any URL Optuna accepts, with clear errors and passwords kept out of sight."""

from __future__ import annotations

import os

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from automl_noisy.errors import UserError

DEFAULT_STORAGE = "sqlite:///automl-noisy.db"
HEARTBEAT_SECONDS = 15
GRACE_SECONDS = 60


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages, logs and exports."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL: nothing to hide beyond what the user typed
        return url.split("@")[-1] if "@" in url else url


def open_storage(url: str, must_exist: bool = False) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage with heartbeats (so a killed driver's trials can be failed).

    ``must_exist`` refuses to create a new SQLite file (for commands that only read a study).
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(f"bad storage URL {mask_url(url)!r}; use e.g. sqlite:///automl-noisy.db "
                        "or postgresql+psycopg2://user:password@host/db") from None
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if must_exist and (not path or not os.path.isfile(path) or os.path.getsize(path) == 0):
            # an empty file is no database either: opening it would write Optuna's schema into it
            raise UserError(f"no study database at {path or url}; run 'automl-noisy search' first "
                            "or pass --storage")
        folder = os.path.dirname(os.path.abspath(path)) if path else ""
        if path and not os.path.isdir(folder):
            raise UserError(f"cannot open storage {mask_url(url)}: folder {folder} does not exist")
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
            engine_kwargs={"pool_pre_ping": True} if parsed.get_backend_name() != "sqlite" else None,
        )
    except ModuleNotFoundError as e:
        raise UserError(f"storage {mask_url(url)} needs the Python module {e.name!r}; "
                        "install it (e.g. pip install psycopg2-binary for PostgreSQL)") from None
    except Exception as e:  # SQLAlchemy OperationalError and friends: unreachable or refused
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot open storage {mask_url(url)}: {reason.replace(url, mask_url(url))}") from None


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return sorted(s.study_name for s in storage.get_all_studies())


def resolve_study(storage: optuna.storages.BaseStorage, name: str | None, url: str) -> optuna.Study:
    """Load study ``name``; without a name, the storage's only study. Errors list the studies."""
    names = study_names(storage)
    if name is None:
        if len(names) == 1:
            name = names[0]
        elif not names:
            raise UserError(f"no study in {mask_url(url)}; run 'automl-noisy search' first")
        else:
            raise UserError(f"{mask_url(url)} holds several studies; pass --study, one of: {', '.join(names)}")
    elif name not in names:
        raise UserError(f"no study named {name!r} in {mask_url(url)}; studies: {', '.join(names) or 'none'}")
    return optuna.load_study(study_name=name, storage=storage)
