"""A search on a Ray cluster of two nodes (a head and a second node, each with its own raylet and one
CPU, on loopback): the driver joins with --ray-address, and each trial records the nodes it ran on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

TINY = ["--data", "synthetic", "--samples", "300", "--dims", "8", "--classes", "3"]


def _cluster(*nodes: dict):
    """Ray's own multi-node test harness: real GCS and raylet processes, one per node, stopped
    afterwards (only these: ``ray stop`` would stop every Ray of the machine)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False, shutdown_at_exit=False,
                      head_node_args={**nodes[0], "include_dashboard": False})
    try:
        for node in nodes[1:]:
            cluster.add_node(**node)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture
def two_nodes():
    yield from _cluster({"num_cpus": 1}, {"num_cpus": 1})


@pytest.fixture
def one_node():
    yield from _cluster({"num_cpus": 1})


@pytest.fixture
def declared_gpus():
    """A node that declares two GPUs it does not have: Ray schedules by the declaration, and each task
    sees the ids Ray gave it, while torch finds no CUDA and trains on the CPU (a stand-in for the GPU
    path's resource requests)."""
    yield from _cluster({"num_cpus": 4, "num_gpus": 2})


def test_trials_run_on_both_nodes_and_record_where(two_nodes, tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    exe = Path(sys.executable).with_name("automl-noisy")
    result = subprocess.run([str(exe), "search", *TINY, "--space", "quick", "--trials", "4", "--no-progress",
                             "--storage", storage, "--ray-address", two_nodes.address],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name=None, storage=storage).trials
    assert len(trials) == 4
    places = {place for t in trials for place in t.user_attrs["ran_on"]}
    nodes = {place.split()[1] for place in places}  # "node 1a2b3c4d (127.0.0.1)"
    assert len(nodes) == 2, places  # three folds per trial, one CPU per node: both nodes ran jobs
    assert all(t.user_attrs["ran_on"] for t in trials)


def test_a_search_without_an_address_runs_on_a_ray_of_its_own(one_node, tmp_path):
    """A Ray already runs on the machine (its head wrote the address file, as ``ray start`` does), so
    a bare ``ray.init()`` would join it and stop when it stops: a search without --ray-address (nor
    RAY_ADDRESS) starts a local Ray of its own, and no job runs on the other one. RAY_ADDRESS (which
    ``ray job submit`` sets for its entrypoint) still names the cluster to join."""
    exe = Path(sys.executable).with_name("automl-noisy")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    other = one_node.head_node.node_id[:8]

    def nodes_of(name: str, extra: dict) -> set[str]:
        storage = f"sqlite:///{tmp_path}/{name}.db"
        result = subprocess.run([str(exe), "search", *TINY, "--space", "quick", "--trials", "2", "--cv", "1",
                                 "--no-progress", "--storage", storage], capture_output=True, text=True,
                                timeout=600, env={**env, **extra})
        assert result.returncode == 0, result.stderr
        trials = optuna.load_study(study_name=None, storage=storage).trials
        return {place.split()[1] for t in trials for place in t.user_attrs["ran_on"]}

    own = nodes_of("own", {})
    assert len(own) == 1 and other not in own, own
    assert nodes_of("joined", {"RAY_ADDRESS": one_node.address}) == {other}


def test_gpus_per_trial_packs_trials_onto_the_gpus_ray_assigns(declared_gpus, tmp_path):
    """--gpus-per-trial 0.5 on two GPUs: each job asks Ray for half a GPU and records the id it got;
    both GPUs get jobs, a pipeline with a pretrained start gets its encoder pretrained on such a
    node too, and a request the cluster cannot meet is one line."""
    storage = f"sqlite:///{tmp_path}/s.db"
    portfolio = tmp_path / "portfolio.yaml"  # one entry that needs an encoder pretrained first
    portfolio.write_text(yaml.safe_dump({"vectors": [{"name": "finetuned", "params": {"start": "finetune"}}]}))
    exe = Path(sys.executable).with_name("automl-noisy")
    common = [str(exe), "search", *TINY, "--space", "quick", "--no-progress", "--storage", storage,
              "--ray-address", declared_gpus.address, "--cv", "1", "--portfolio", str(portfolio)]
    result = subprocess.run([*common, "--trials", "4", "--gpus-per-trial", "0.5"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name=None, storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4, [t.user_attrs.get("fail_reason") for t in trials]
    assert trials[1].user_attrs["portfolio"] == "finetuned" and "encoder" in trials[1].user_attrs
    gpus = {place.rsplit("GPU ", 1)[1] for t in trials for place in t.user_attrs["ran_on"]}
    assert gpus == {"0", "1"}, [t.user_attrs["ran_on"] for t in trials]
    result = subprocess.run([*common, "--trials", "5", "--gpus-per-trial", "3"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "automl-noisy: error: --gpus-per-trial 3.0 but the Ray cluster has 2 GPUs; drop the flag or join a GPU cluster"]
