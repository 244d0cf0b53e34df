"""Study storage: open any URL Optuna accepts, with clear errors and passwords kept out of sight."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import datetime

import optuna
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from automl_noisy.credentials import DEFAULT_STORAGE  # noqa: F401 - the default, named here for the search
from automl_noisy.errors import UserError
HEARTBEAT_SECONDS = 15
GRACE_SECONDS = 60
#: how long a database server may be gone (restarted, failed over) before the search gives up
RECONNECT_SECONDS = 120.0


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
    server = parsed.get_backend_name() != "sqlite"
    try:
        for attempt in range(SCHEMA_ATTEMPTS):
            try:
                return (ReconnectingStorage if server else SQLiteStorage)(
                    url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                    engine_kwargs={"pool_pre_ping": True} if server else None,
                )
            except Exception as e:
                if attempt + 1 == SCHEMA_ATTEMPTS or not _schema_race(e):
                    raise
                time.sleep(0.2 * (attempt + 1))  # another process is creating the same new database's tables
        raise AssertionError("unreachable")
    except ModuleNotFoundError as e:
        raise UserError(f"storage {mask_url(url)} needs the Python module {e.name!r}; "
                        "install it (e.g. pip install psycopg2-binary for PostgreSQL)") from None
    except Exception as e:  # SQLAlchemy OperationalError and friends: unreachable or refused
        raise UserError(f"cannot open storage {mask_url(url)}: {_reason(e, url)}") from None


#: how often a storage is opened again when another process was creating its tables at that moment
SCHEMA_ATTEMPTS = 5


def _schema_race(error: BaseException) -> bool:
    """Whether opening a new database failed because another process created Optuna's tables (or
    their version row) at the same moment: opening it again then finds them."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            return False
        text = str(seen).lower()
        if isinstance(seen, (IntegrityError, ProgrammingError, OperationalError)) and (
                "alembic_version" in text or "already exists" in text):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _reason(error: BaseException, url: str) -> str:
    """The first line of a database error (the driver's own message when SQLAlchemy wraps one), with
    the URL's password masked."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0] if str(error).strip() \
        else type(error).__name__
    return reason.replace(url, mask_url(url))


def _lost_connection(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps: Optuna's StorageInternalError wraps SQLAlchemy's) is a
    lost or refused database connection rather than a problem with the data."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    seen: BaseException | None = error
    for _ in range(4):
        if isinstance(seen, OperationalError) or (isinstance(seen, DBAPIError) and seen.connection_invalidated):
            return True
        if seen is None:
            break
        seen = seen.__cause__ or seen.__context__
    return False


#: what SQLite and PostgreSQL say when they cannot write (lower case)
_REFUSED_WRITES = ("readonly database", "read-only", "disk is full", "no space left", "disk i/o error",
                   "unable to open database file", "permission denied")


def write_refused(error: BaseException) -> str | None:
    """The database's own words when ``error`` (or what it wraps: Optuna wraps SQLAlchemy's errors)
    says the storage cannot be written (a read-only file or folder, a full disk), else None."""
    from sqlalchemy.exc import DBAPIError

    seen: BaseException | None = error
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, DBAPIError):
            reason = str(seen.orig or seen).strip().splitlines()[0] if str(seen.orig or seen).strip() else ""
            if any(words in reason.lower() for words in _REFUSED_WRITES):
                return reason
        seen = seen.__cause__ or seen.__context__
    return None


def _reconnecting(method):
    """``method`` retried, with growing pauses, while the database server is unreachable, for up to
    ``RECONNECT_SECONDS``; then a UserError that says what is kept and how to go on."""
    import functools
    import time

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        deadline, pause = time.monotonic() + RECONNECT_SECONDS, 0.25
        while True:
            try:
                return method(self, *args, **kwargs)
            except Exception as e:
                if not _lost_connection(e):
                    raise
                if time.monotonic() + pause > deadline:
                    raise UserError(f"lost the study storage {mask_url(self.url)} for {RECONNECT_SECONDS:.0f} s "
                                    f"({_reason(e, self.url)}); finished trials are stored: "
                                    "run the same command again to resume") from None
                time.sleep(pause)
                pause = min(pause * 2, 8.0)

    return call


class ReconnectingStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage for a database server that rides out a restart or a fail-over: every
    storage call whose connection is lost or refused is retried (pooled connections are checked
    before use, so the retry opens a fresh one) for up to ``RECONNECT_SECONDS``.

    A write is retried only when its connection failed, so in all but one case its transaction was
    rolled back by the server; the exception is a commit the server made and whose reply was lost,
    which could create one extra trial: a resume marks such a trial, owned by no driver, interrupted.
    """


for _name in ("check_trial_is_updatable", "create_new_study", "create_new_trial", "delete_study", "get_all_studies",
              "get_all_trials", "get_best_trial", "get_n_trials", "get_study_directions", "get_study_id_from_name",
              "get_study_name_from_id", "get_study_system_attrs", "get_study_user_attrs", "get_trial",
              "get_trial_id_from_study_id_trial_number", "get_trial_number_from_id", "get_trial_param",
              "get_trial_params", "get_trial_system_attrs", "get_trial_user_attrs", "record_heartbeat",
              "set_study_system_attr", "set_study_user_attr", "set_trial_intermediate_value", "set_trial_param",
              "set_trial_state_values", "set_trial_system_attr", "set_trial_user_attr",
              # what Optuna's _CachedStorage, which wraps an RDB storage in every Study, calls directly
              "_create_new_trial", "_get_best_trial_id", "_get_stale_trial_ids", "_get_trials", "_set_trial_param"):
    setattr(ReconnectingStorage, _name, _reconnecting(getattr(optuna.storages.RDBStorage, _name)))


class SQLiteStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage for a SQLite file that several drivers share, with an atomic claim of a
    queued trial.

    ``Study.ask`` hands out a queued (WAITING) trial by setting it RUNNING, which RDBStorage does as a
    read and a write: it reads the row ``FOR UPDATE`` and sets it only if it still waits. SQLite
    ignores ``FOR UPDATE`` and Python's sqlite3 opens no transaction for a read, so two drivers that
    ask at the same moment can both read WAITING and both run the same trial (PostgreSQL locks the
    row). Here the claim is one conditional ``UPDATE``: exactly one asker changes the row. It uses
    RDBStorage's own table model and session helper (Optuna 5's, private to it);
    tests/search/test_storage.py checks the claim against the installed Optuna.
    """

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        if state != TrialState.RUNNING or values is not None:
            return super().set_trial_state_values(trial_id, state, values)
        with _create_scoped_session(self.scoped_session) as session:
            claimed = (session.query(models.TrialModel)
                       .filter(models.TrialModel.trial_id == trial_id,
                               models.TrialModel.state == TrialState.WAITING)
                       .update({models.TrialModel.state: TrialState.RUNNING}, synchronize_session=False))
            if claimed == 1:  # the same write transaction: as Optuna records a start
                models.TrialModel.find_or_raise_by_id(trial_id, session).datetime_start = datetime.now()
        if claimed != 1:  # running elsewhere (False), or finished or unknown (raised, as RDBStorage does)
            self.check_trial_is_updatable(trial_id, self.get_trial(trial_id).state)
        return claimed == 1


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
