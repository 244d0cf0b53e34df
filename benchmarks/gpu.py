"""Trials per hour on a GPU at --gpus-per-trial 1, 0.5 and 0.25, GPU utilization, and the speed-up
over this machine's CPUs, on a generated CIFAR-sized image task.

The task: an ``.npz`` of 5,000 random 3x32x32 uint8 images in 10 classes whose mean colour depends on
the class (learnable, nothing downloaded), 20 % symmetric noise; the default space's cnn with plain
cross entropy, 10 epochs, holdout (``--cv 1``), so every trial does the same work. Utilization is
``nvidia-smi``'s, sampled every second during the searches.

Two rates: over the whole search (Ray's start, the data handed to the workers, the noise profile, the
wind-up: what a user waits for) and over the trials' own window (the first trial's start to the last
one's completion, Optuna's timestamps: what grows with the number of trials); and the median wall
time of one trial. A fixed cost per search shows as the gap between the two rates; packing trials on
a GPU shows in the second. The CPU baseline is measured the same way.

    .venv/bin/python benchmarks/gpu.py             # on a machine with a CUDA GPU; writes BENCHMARKS.md
    .venv/bin/python benchmarks/gpu.py --cpu-only  # only the CPU baseline (prints)

Where no CUDA GPU is visible, the script writes that into its section instead of numbers (the GPU
code paths are then covered by tests with stand-ins: tests/search/test_cluster.py declares GPUs to
Ray and checks the packing and the ids each trial sees).

    .venv/bin/python benchmarks/gpu.py --cpu-rate R  # R: what --cpu-only printed on the CPU machine
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from _common import busy_cores, machine, table, write_section

FRACTIONS = (1.0, 0.5, 0.25)


def make_task(folder: Path, n: int = 5000) -> str:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n)
    colours = rng.integers(40, 216, (10, 3, 1, 1))
    x = np.clip(rng.normal(colours[y], 40, (n, 3, 32, 32)), 0, 255).astype(np.uint8)
    path = folder / "cifar-sized.npz"
    np.savez(path, X=x, y=y)
    return str(path)


def make_space(folder: Path) -> str:
    """The default space pinned to one pipeline: cnn, cross entropy, 10 epochs, nothing pruned."""
    space = {"epochs": 10, "batch_size": 128, "optimizer": {"sgd": {"lr": 0.05}}, "schedule": "cosine",
             "sampler": {"name": "random"}, "pruner": {"name": "none"},
             "families": {"model": {"cnn": {"channels": 32}}, "loss": ["ce"]}}
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    return str(path)


class Utilization:
    """nvidia-smi's GPU utilization, sampled every second in a thread."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip():
                self.samples.append(float(out.stdout.split()[0]))

    def __enter__(self) -> "Utilization":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def trials_per_hour(data: str, space: str, folder: Path, trials: int, gpus: float, workers: int | None) -> dict:
    """The search's rates: whole (trials per hour of the search's wall time), trials (per hour of the
    window from the first trial's start to the last one's completion) and the median trial's seconds."""
    from automl_noisy.data import DataSpec
    from automl_noisy.search.controller import SearchOptions, search

    options = SearchOptions(DataSpec(f"npz:{data}", "symmetric:0.2"), space=space, trials=trials,
                            storage=f"sqlite:///{folder}/gpu-{gpus}-{time.time_ns()}.db", gpus_per_trial=gpus,
                            workers=workers, progress=False, cv=1, portfolio=None)
    start = time.perf_counter()
    study = search(options)
    return rates(study.get_trials(deepcopy=False), trials, time.perf_counter() - start)


def rates(trials: list, planned: int, whole: float) -> dict:
    """``trials_per_hour``'s numbers from a search's trials (Optuna's FrozenTrials) and its wall time
    ``whole`` in seconds; every one of the ``planned`` trials must have completed."""
    from optuna.trial import TrialState

    done = [t for t in trials if t.state == TrialState.COMPLETE]
    if len(done) != planned:
        raise SystemExit(f"{planned - len(done)} of {planned} trials did not complete; the rates would mislead")
    window = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
    seconds = statistics.median((t.datetime_complete - t.datetime_start).total_seconds() for t in done)
    return {"whole": planned * 3600 / whole, "trials": planned * 3600 / window, "trial_s": seconds}


NO_GPU = """## GPU (`benchmarks/gpu.py`)

{machine}.

**Not measured: no CUDA GPU on the machine this ran on.** The GPU code paths (`--gpus-per-trial`
packing, the GPU ids a trial records, a GPU request the cluster cannot meet) are tested with
stand-ins in `tests/search/test_cluster.py`: a Ray node declares two GPUs it does not have, so the
test passes only if the resource requests are right. On a machine with a GPU, run
`benchmarks/gpu.py --cpu-rate R`, with R the trials per hour (trials' window) that `benchmarks/gpu.py --cpu-only` prints on
the CPU machine.
"""


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--cpu-only", action="store_true", help="measure this machine's CPUs and print it")
    parser.add_argument("--cpu-rate", type=float, help="trials/hour in the trials' window on the CPU machine (default: measure here)")
    args = parser.parse_args()
    gpu = torch.cuda.is_available() and shutil.which("nvidia-smi") is not None
    if not gpu and not args.cpu_only:
        write_section("gpu", NO_GPU.format(machine=machine()))
        print("no CUDA GPU: wrote that into the gpu section of BENCHMARKS.md")
        return
    busy = busy_cores()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data, space = make_task(folder), make_space(folder)
        cpu = args.cpu_rate
        if cpu is None or args.cpu_only:
            measured = trials_per_hour(data, space, folder, max(4, args.trials // 4), 0.0, None)
            cpu = measured["trials"]
            print(f"CPU: {cpu:.1f} trials/hour in the trials' window ({measured['whole']:.1f} over the whole "
                  f"search, {measured['trial_s']:.1f} s a trial)", flush=True)
        if args.cpu_only:
            return
        rows = []
        for fraction in FRACTIONS:
            with Utilization() as util:
                rate = trials_per_hour(data, space, folder, args.trials, fraction, None)
            mean_util = statistics.mean(util.samples) if util.samples else float("nan")
            rows.append([f"{fraction:g}", f"{int(1 / fraction) * torch.cuda.device_count()}", f"{rate['whole']:.1f}",
                         f"{rate['trials']:.1f}", f"{rate['trial_s']:.1f}", f"{mean_util:.0f} %",
                         f"{rate['trials'] / cpu:.1f}x"])
            print(rows[-1], flush=True)
    text = table(["--gpus-per-trial", "trials at once", "trials/hour (search)", "trials/hour (trials' window)",
                  "median trial (s)", "GPU utilization (mean)", "vs CPU"], rows)
    body = f"""## GPU (`benchmarks/gpu.py`)

{machine()}; {torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}. Other load when the run started:
{busy:.2f} cores busy.

The task of the script's docstring, {args.trials} trials per setting. "search" divides the trials by the
whole search's wall time, "trials' window" by the time from the first trial's start to the last one's
completion (the gap between the two is the search's fixed cost); "vs CPU" divides the window rate by
{cpu:.1f} trials per hour in the window on the CPUs ({'given with --cpu-rate' if args.cpu_rate else 'of this machine'}).

{text}
"""
    write_section("gpu", body)
    print("wrote the gpu section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
