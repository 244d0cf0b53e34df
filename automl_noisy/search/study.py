"""The study a search runs in: its name, opening and checking it, and the bookkeeping of trials that
outlive their driver (interrupted, orphaned, queued and never started).

A study records what identifies it (the space's fingerprint, the data spec and the data's
fingerprint, the seed); a search that opens it again must match, and a study without these
attributes (made by plain Optuna) is refused. Trials name the driver that runs them
(``host:pid``), so a resume can tell a dead driver's trials from a live one's.
"""

from __future__ import annotations

import os
import re
import socket
import time
from importlib.metadata import version

import numpy as np
import optuna
from optuna.trial import TrialState

from automl_noisy.data import DataSpec, NoisyDataset
from automl_noisy.errors import UserError
from automl_noisy.search.shared import counts
from automl_noisy.search.space import SearchSpace
from automl_noisy.search.storage import mask_url


def default_study_name(data: DataSpec, space: SearchSpace) -> str:
    source = data.source.split(":", 1)[-1] if ":" in data.source else data.source
    stem = os.path.splitext(os.path.basename(source.rstrip("/")))[0] or data.source
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{stem}-{data.noise}-{space.name}")


def stored_folds(storage: optuna.storages.BaseStorage, name: str) -> int | None:
    """The folds of an existing study of that name (None if there is none)."""
    try:
        data = optuna.load_study(study_name=name, storage=storage).user_attrs.get("data")
    except KeyError:
        return None
    return DataSpec.from_dict(data).folds if isinstance(data, dict) else None


def open_study(storage: optuna.storages.BaseStorage, url: str, name: str, spec: DataSpec, seed: int,
               space: SearchSpace, data: NoisyDataset, profile: dict | None = None) -> optuna.Study:
    """The study ``name`` at ``url`` for a search of ``space`` on ``data`` (loaded from ``spec``) with
    ``seed``: created with the attributes that identify it (``profile``: the data's noise profile when
    already computed, else computed here), or, when it exists, checked to be an automl-noisy study of
    the same space, seed, data spec and data (one line otherwise)."""
    identity = {"space_fingerprint": space.fingerprint(), "data": spec.to_dict(), "seed": seed}
    made = dict(study_name=name, storage=storage, sampler=space.make_sampler(seed), pruner=space.make_pruner())
    try:  # created here, atomically: of two searches creating it at once, one creates and one loads
        study = optuna.create_study(direction="maximize", **made)
        attrs: dict = {}
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**made)
        attrs = made_by_us(study, url)
    if "space_fingerprint" not in attrs:
        # the fingerprint last: a search that finds it may read every other attribute (see made_by_us)
        for key, value in {"data": identity["data"], "seed": identity["seed"], "space": space.to_dict(),
                           "space_name": space.name,
                           "data_fingerprint": data.fingerprint, "noise_rate": data.noise_rate,
                           "input_shape": list(data.input_shape), "noise_profile": profile or noise_profile(data, seed),
                           "objective": objective(data),
                           "automl_noisy_version": version("automl-noisy"),
                           "space_fingerprint": identity["space_fingerprint"]}.items():
            study.set_user_attr(key, value)
        return study
    stored = {**attrs, "data": DataSpec.from_dict(attrs["data"]).to_dict() if "data" in attrs else None}
    # the seed first: --seed also seeds the data's split and noise, which would then differ as well
    for key, what in (("space_fingerprint", "search space"), ("seed", "seed"), ("data", "data, noise or --cv")):
        if stored.get(key) != identity[key]:
            raise UserError(f"study {name!r} in {mask_url(url)} was created with a different "
                            f"{what}; pass a new --study name, or the original {what}")
    if attrs.get("data_fingerprint") not in (None, data.fingerprint):
        raise UserError(f"study {name!r} in {mask_url(url)} was made on other data: {spec.source} "
                        f"now holds other rows, labels or trusted rows (fingerprint {data.fingerprint}, the study's "
                        f"{attrs['data_fingerprint']}); pass a new --study name to search the new data")
    return study


#: how long a search waits for another driver that has just created the same study to label it
LABEL_WAIT_SECONDS = 10.0


def made_by_us(study: optuna.Study, url: str) -> dict:
    """The user attributes of an existing study, which must be an automl-noisy study: one that has
    them, or (no trial yet) one another search is creating this moment, whose attributes then appear
    (its search space's fingerprint last)."""
    deadline = time.monotonic() + LABEL_WAIT_SECONDS
    while True:
        attrs = study.user_attrs
        if "space_fingerprint" in attrs:
            return attrs
        if study.get_trials(deepcopy=False) or time.monotonic() > deadline:
            raise UserError(f"study {study.study_name!r} in {mask_url(url)} was not made by automl-noisy (it has none "
                            "of the attributes a search records); pass another --study name")
        time.sleep(0.2)


def objective(data: NoisyDataset) -> dict:
    """What ranks the study's trials: ``{"ranked_by": "trusted" or "noisy", "rows": how many rows score}``
    (see :attr:`NoisyDataset.trusted_objective`), and ``trusted_validating`` when the data has trusted
    rows but too few of them validate to rank; a study without it ranked by the noisy labels."""
    from automl_noisy.data.folds import scored_rows

    out = {"ranked_by": "trusted" if data.trusted_objective else "noisy",
           "rows": sum(scored_rows(data, data.trusted_objective)[0])}
    if data.trusted_train is not None and not data.trusted_objective:  # trusted rows, too few of them validate
        out["trusted_validating"] = sum(scored_rows(data, True)[0])
    return out


def noise_profile(data: NoisyDataset, seed: int) -> dict:
    """The noise of the labels a search selects with (train and validation), for the study: measured
    on the trusted rows (given label against verified) when there are at least ``MIN_MEASURED_ROWS``
    of them, else estimated by Confident Learning (see :mod:`automl_noisy.data.noise_profile`)."""
    from automl_noisy.data.noise_profile import MIN_MEASURED_ROWS, measured_profile, noise_profile

    given, verified = data.trusted_labels()
    if len(given) >= MIN_MEASURED_ROWS:
        return measured_profile(given, verified, data.class_names).to_dict()
    x, y = np.concatenate([data.x_train, data.x_val]), np.concatenate([data.y_train, data.y_val])
    return noise_profile(x, y, data.class_names, seed).to_dict()


def tally(study: optuna.Study) -> dict[str, int]:
    """The finished trials that count toward ``--trials`` (:func:`automl_noisy.search.shared.counts`),
    by state."""
    names = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
    out = dict.fromkeys(names.values(), 0)
    for t in study.get_trials(deepcopy=False, states=tuple(names)):
        if counts(t):
            out[names[t.state]] += 1
    return out


#: a RUNNING trial with neither a driver nor a heartbeat is an orphan once it is this old (a live
#: driver names itself on a trial right after asking for it)
ORPHAN_SECONDS = 60.0


def driver_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def has_baseline(study: optuna.Study) -> bool:
    """Whether plain CE (trial 0's pipeline) has finished, or is queued or running, in the study."""
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("baseline") and not (t.state == TrialState.FAIL and t.user_attrs.get("interrupted")):
            return True
    return False


def fail_interrupted(study: optuna.Study) -> None:
    """Mark FAIL (interrupted) the trials a stopped driver left RUNNING or WAITING: at once when that
    driver ran on this host and is gone; a RUNNING trial no driver ever named (killed between
    ``ask`` and its first attribute) once it is ``ORPHAN_SECONDS`` old without a heartbeat; other
    trials of other hosts once their heartbeat is stale (Optuna's ``fail_stale_trials``)."""
    host, now = socket.gethostname(), time.time()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        driver_host, _, pid = str(t.user_attrs.get("driver", "")).rpartition(":")
        gone = driver_host == host and pid.isdigit() and not alive(int(pid))
        if "driver" not in t.user_attrs and t.state == TrialState.RUNNING:
            started = t.datetime_start.timestamp() if t.datetime_start is not None else now
            gone = now - started > ORPHAN_SECONDS and not has_heartbeat(study, t._trial_id)
        if gone:
            mark_interrupted(study, t._trial_id, "interrupted: the search driver stopped", t.state == TrialState.WAITING)
    optuna.storages.fail_stale_trials(study)


def mark_interrupted(study: optuna.Study, trial_id: int, reason: str, waiting: bool = False) -> None:
    """FAIL a trial no driver will finish, marked interrupted (a resume does not count it). A
    ``waiting`` (queued) trial is first claimed as Optuna's ``ask`` claims one, atomically, so one that
    another search has just started is left to it; a trial another search has already marked is left
    as it is."""
    from optuna.exceptions import UpdateFinishedTrialError

    storage = study._storage
    try:
        if waiting and not storage.set_trial_state_values(trial_id, TrialState.RUNNING):
            return
        storage.set_trial_user_attr(trial_id, "interrupted", True)
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except UpdateFinishedTrialError:
        return


def has_heartbeat(study: optuna.Study, trial_id: int) -> bool:
    """Whether a driver has recorded a heartbeat for the trial (RDB storages only)."""
    from optuna.storages._rdb import models

    storage = getattr(study._storage, "_backend", study._storage)  # Optuna caches an RDB storage
    if not isinstance(storage, optuna.storages.RDBStorage):
        return False
    session = storage.scoped_session()
    try:
        return session.query(models.TrialHeartbeatModel).filter_by(trial_id=trial_id).first() is not None
    finally:
        session.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True




def unqueue(study: optuna.Study, driver: str, reason: str) -> None:
    """Mark interrupted the trials ``driver`` queued and no search has started (they run on a resume)."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if t.user_attrs.get("driver") == driver:
            mark_interrupted(study, t._trial_id, reason, waiting=True)
