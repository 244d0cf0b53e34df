"""RayExecutor: each job (a trial, or one cross-validation fold of it) is a Ray generator task
streaming where it runs (a Placement: node, address, GPU ids), then one EpochMetrics per epoch.
A pretrained body is ``ray.put`` once per encoder and passed to the jobs that start from it;
encoders a search lacks are pretrained as Ray tasks, all at once.

The dataset is ``ray.put`` once and shared by every task; a fold's task cuts its split from it, so
the folds of a trial run at once across a cluster. A CPU job asks for one CPU and uses one thread,
so a machine runs as many jobs at once as it has CPUs; on GPU nodes a job may take a fraction of a
device (``gpus_per_trial``). Pruning cancels the tasks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager

import ray
import ray._private.utils as ray_utils

from automl_noisy.credentials import STORAGE_ENV, hide
from automl_noisy.data import NoisyDataset
from automl_noisy.errors import UserError, shorten
from automl_noisy.pipeline import Pipeline
from automl_noisy.search.executors.base import Executor, Placement, TrialEvent, describe_error
from automl_noisy.train import EpochMetrics, run_trial
from automl_noisy.train.pretrain import Encoder, EncoderRequest, make_encoder
from automl_noisy.train.trainer import default_device


def _trial_task(pipeline: Pipeline, data: NoisyDataset, threads: int, fold: int | None,
                encoder: Encoder | None, snapshots: str | None = None,
                driver_node: str | None = None) -> Iterator[Placement | EpochMetrics]:
    context = ray.get_runtime_context()
    yield Placement(context.get_node_id()[:8], ray.util.get_node_ip_address(),
                    tuple(str(g) for g in context.get_accelerator_ids().get("GPU", [])))
    here = context.get_node_id() == driver_node  # only the driver's machine can read the files back
    yield from run_trial(pipeline, data, threads=threads, fold=fold, encoder=encoder,
                         snapshots=snapshots if here else None)


def _encoder_task(request: EncoderRequest, data: NoisyDataset, threads: int) -> Encoder:
    """Pretrain an encoder on the device this task sees, as a trial does: the GPU Ray gave it, when
    there is one to use, else the CPU (a node may declare GPUs that torch cannot reach), with
    ``threads`` CPU threads."""
    return make_encoder(request, data, None, default_device(), threads)


#: the shortest secret looked for inside other values (a shorter one is only matched as a whole value,
#: so that a password such as "1" does not strip PATH from Ray's processes)
MIN_SECRET_INSIDE = 6


def _holds(value: str, secret: str) -> bool:
    return bool(secret) and (value == secret or (len(secret) >= MIN_SECRET_INSIDE and secret in value))


@contextmanager
def hidden_from_ray(secrets: Sequence[str]) -> Iterator[None]:
    """Within the block, Ray records the driver's command line with the secrets masked, and processes
    started in the block (a local Ray's GCS, raylet and, through the raylet, every worker) inherit an
    environment without ``AUTOML_NOISY_STORAGE`` and without any variable that holds a secret (such as
    ``POSTGRES_PASSWORD``: a secret of ``MIN_SECRET_INSIDE`` characters or more anywhere in its value, a
    shorter one as the whole value). The driver's own environment is restored on leaving."""
    removed = {k: v for k, v in os.environ.items() if k == STORAGE_ENV or any(_holds(v, s) for s in secrets)}
    entrypoint = ray_utils.get_entrypoint_name

    def masked_entrypoint() -> str:
        return hide(entrypoint(), secrets)

    for key in removed:
        del os.environ[key]
    ray_utils.get_entrypoint_name = masked_entrypoint
    try:
        yield
    finally:
        ray_utils.get_entrypoint_name = entrypoint
        os.environ.update(removed)


def connect(address: str | None = None, num_cpus: int | None = None, secrets: Sequence[str] = ()) -> None:
    """Join the Ray cluster at ``address``, or start a local one of the search's own (auth disabled
    on loopback). Without an address Ray itself would join the Ray last started on this machine (by
    ``ray start``, or another program's test cluster) and die with it; only ``RAY_ADDRESS``, which
    ``ray job submit`` sets for its entrypoint, still names a cluster to join. The ``secrets`` (a
    storage password) stay out of Ray: see :func:`hidden_from_ray`."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _check_reachable(address)
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        with hidden_from_ray(secrets):
            if address:
                ray.init(address=address, logging_level="WARNING", log_to_driver=False)
            else:
                ray.init(address="local", num_cpus=num_cpus,
                         include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        target = address or "a local Ray"
        raise UserError(f"cannot start or join {target}: {shorten(e)}") from None


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """A one-line error when nothing answers at a ``host:port`` (or ``ray://host:port``) address;
    ``ray.init`` would retry for minutes. ``auto`` and other forms are left to Ray."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise UserError(f"cannot reach a Ray cluster at {address} ({e.strerror or e}); start one with "
                        "'ray start --head' and pass the address it prints, or drop --ray-address "
                        "for a local Ray") from None


def encoder_threads(free_cpus: float, encoders: int, largest_node: float) -> int:
    """The CPU threads (and CPUs asked of Ray) each of ``encoders`` pretraining tasks gets: the free
    CPUs of the cluster shared evenly, at least one, and no more than the largest node holds (a task
    runs on one node; asking for more would leave it waiting for ever).

    >>> encoder_threads(16, 2, 16), encoder_threads(2, 2, 2), encoder_threads(2, 3, 2), encoder_threads(3, 1, 1)
    (8, 1, 1, 1)
    """
    return max(1, min(int(free_cpus // max(1, encoders)), int(largest_node)))


class RayExecutor(Executor):
    """Runs trials as Ray tasks; ``workers`` caps how many run at once (default: all CPUs)."""

    def __init__(self, data: NoisyDataset, workers: int | None = None, address: str | None = None,
                 cpus_per_trial: float = 1, gpus_per_trial: float = 0, secrets: Sequence[str] = ()) -> None:
        connect(address, num_cpus=None, secrets=secrets)
        resources = ray.cluster_resources()
        if gpus_per_trial > 0:
            fit = int(resources.get("GPU", 0) / gpus_per_trial)
            if fit < 1:
                raise UserError(f"--gpus-per-trial {gpus_per_trial} but the Ray cluster has "
                                f"{resources.get('GPU', 0):g} GPUs; drop the flag or join a GPU cluster")
        else:
            fit = int(resources.get("CPU", 1) / cpus_per_trial)
        self.capacity = max(1, workers or fit)
        self._driver_node = ray.get_runtime_context().get_node_id()
        self._data_ref = ray.put(data)
        threads = max(1, int(cpus_per_trial))
        self._task = ray.remote(_trial_task).options(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial,
                                                     max_retries=0)
        self._threads, self._gpus = threads, gpus_per_trial > 0
        self._running: dict[Hashable, ray.ObjectRefGenerator] = {}
        self._encoder_refs: dict[str, ray.ObjectRef] = {}
        self._threads_fixed: int | None = None  # the pretraining threads, fixed at the first pretraining
        self._pending: dict[str, ray.ObjectRef] = {}  # pretraining tasks not yet collected

    def submit(self, job: Hashable, pipeline: Pipeline, fold: int | None = None, encoder: str | None = None,
               snapshots: str | None = None) -> None:
        body = self._encoder_refs[encoder] if encoder is not None else None
        self._running[job] = self._task.remote(pipeline, self._data_ref, self._threads, fold, body, snapshots,
                                               self._driver_node)

    @property
    def pretrain_threads(self) -> int:  # type: ignore[override]
        return self._threads_fixed or 1

    def add_encoder(self, key: str, body: Encoder) -> None:
        if key not in self._encoder_refs:
            self._encoder_refs[key] = ray.put(dict(body))  # once; every job that starts from it shares it

    def pretrain(self, requests: list[EncoderRequest], interrupt: Callable[[], None] | None = None) -> None:
        """One Ray task per encoder, all at once, sharing the CPUs that are free now (before the first
        trial: all of them; see :func:`encoder_threads`), or one GPU each when trials run on GPUs. A
        job that starts from one gets the task's result as its argument, so Ray runs it once the
        encoder is there, while trials that need none run when CPUs free up."""
        gpus = 1 if self._gpus else 0
        if self._threads_fixed is None:  # once: an encoder pretrained later in the search gets as many
            largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=1)
            self._threads_fixed = 1 if self._gpus else encoder_threads(
                ray.available_resources().get("CPU", 1), len(requests), largest)
        threads = self._threads_fixed
        task = ray.remote(_encoder_task).options(num_cpus=threads, num_gpus=gpus, max_retries=0)
        for r in requests:
            self._encoder_refs[r.key] = self._pending[r.key] = task.remote(r, self._data_ref, threads)

    def pretrained(self, timeout: float = 0.0) -> list[tuple[str, Encoder | BaseException]]:
        if not self._pending:
            return []
        refs = list(self._pending.values())
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        out: list[tuple[str, Encoder | BaseException]] = []
        for key in [k for k, ref in self._pending.items() if ref in ready]:
            try:
                out.append((key, ray.get(self._pending.pop(key))))
            except Exception as e:  # noqa: BLE001 - the trials that take its result fail with it too
                out.append((key, e))
        return out

    def next_event(self, timeout: float | None = None) -> TrialEvent | None:
        if not self._running:
            return None
        jobs = {id(g): job for job, g in self._running.items()}
        ready, _ = ray.wait(list(self._running.values()), num_returns=1, timeout=timeout)
        if not ready:
            return None
        job = jobs[id(ready[0])]
        try:
            return TrialEvent.of(job, ray.get(next(self._running[job])))
        except StopIteration:
            del self._running[job]
            return TrialEvent(job, done=True)
        except Exception as e:  # noqa: BLE001 - task error, crashed worker, lost node
            del self._running[job]
            return TrialEvent(job, error=describe_error(e))

    def cancel(self, job: Hashable) -> None:
        generator = self._running.pop(job, None)
        if generator is not None:
            ray.cancel(generator)

    def running(self) -> int:
        return len(self._running)

    def close(self) -> None:
        for job in list(self._running):
            self.cancel(job)
