"""A search on a Ray cluster of two nodes (a head and a second node, each with its own raylet and one
CPU, on loopback): the driver joins with --ray-address, and each trial records the nodes it ran on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

TINY = ["--data", "synthetic", "--samples", "300", "--dims", "8", "--classes", "3"]


@pytest.fixture
def two_nodes():
    """Ray's own multi-node test harness: real GCS and raylet processes, stopped afterwards (only
    these: ``ray stop`` would stop every Ray of the machine)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False, shutdown_at_exit=False,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


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
