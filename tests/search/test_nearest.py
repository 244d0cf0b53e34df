"""The portfolio in the order of the suite tasks nearest the data (``--portfolio-order nearest``)."""

from __future__ import annotations

import math

import optuna
import pytest
import yaml

from automl_noisy.cli import main
from automl_noisy.search import portfolio as portfolio_module
from automl_noisy.errors import UserError
from automl_noisy.search.controller import SearchOptions, search
from automl_noisy.search.nearest import SuiteTask, file_order, load_nearest, meta_point, nearest_order
from automl_noisy.search.portfolio import Entry, load_portfolio

A, B, C, D = (Entry(name, {}) for name in "abcd")


def test_the_nearest_task_gives_its_best_entry_first_and_the_rest_keep_the_file_order():
    tasks = [SuiteTask("big-clean", 5000, 10, 0.1, ("b", "a")), SuiteTask("small-noisy", 300, 3, 0.6, ("c", "a")),
             SuiteTask("small-clean", 300, 3, 0.1, ("c", "b"))]
    order = nearest_order([A, B, C, D], tasks, rows=320, classes=3, noise=0.55)
    # small-noisy is nearest (gives c), then small-clean (its c taken: b), then big-clean (b taken: a); d last
    assert [e.name for e in order] == ["c", "b", "a", "d"]
    order = nearest_order([A, B, C, D], tasks, rows=6000, classes=10, noise=0.1)
    assert [e.name for e in order][:1] == ["b"]


def test_distances_are_scaled_by_each_feature_s_range_over_the_tasks():
    # rows span 2 decades, noise 0.1: a 0.1 difference in noise weighs as much as 100x the rows
    tasks = [SuiteTask("rows-far", 10_000, 3, 0.2, ("a",)), SuiteTask("noise-far", 100, 3, 0.3, ("b",))]
    assert meta_point(100, 3, 0.2) == (2.0, math.log2(3), 0.2)
    assert [e.name for e in nearest_order([A, B], tasks, rows=100, classes=3, noise=0.2)] == ["a", "b"]  # a tie
    assert [e.name for e in nearest_order([A, B], tasks, rows=100, classes=3, noise=0.25)] == ["b", "a"]  # 1.5 vs 0.5
    assert [e.name for e in nearest_order([A, B], tasks, rows=1000, classes=3, noise=0.2)] == ["a", "b"]  # 0.5 vs 1.5


def test_entries_the_space_left_out_are_skipped_and_no_tasks_keep_the_order():
    tasks = [SuiteTask("t", 300, 3, 0.2, ("x", "c"))]  # "x": not among the entries given (left out by the space)
    assert [e.name for e in nearest_order([A, C], tasks, 300, 3, 0.2)] == ["c", "a"]
    assert nearest_order([A, B], [], 300, 3, 0.2) == [A, B]


PORTFOLIO = {
    "vectors": [{"name": "gce", "params": {"loss": "gce"}}, {"name": "mixup", "params": {"mixing": "mixup"}},
                {"name": "mae", "params": {"loss": "mae"}}],
    "nearest": {"vectors": [
        {"task": "huge", "rows": 100_000, "classes": 50, "noise": 0.1, "order": ["gce", "mixup"]},
        {"task": "like-tiny", "rows": 200, "classes": 3, "noise": 0.2, "order": ["mae", "gce"]}]},
}


def test_load_nearest_reads_the_tasks_per_kind(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(PORTFOLIO))
    nearest = load_nearest(path, load_portfolio(path))
    assert list(nearest) == ["vectors"] and nearest["vectors"][1] == SuiteTask("like-tiny", 200, 3, 0.2, ("mae", "gce"))
    assert load_portfolio(path)["vectors"][0].name == "gce"  # the part is no entry
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"vectors": PORTFOLIO["vectors"]}))
    assert load_nearest(plain, load_portfolio(plain)) == {}


@pytest.mark.parametrize("nearest, message", [
    ([1], "nearest maps vectors and/or images"),
    ({"tables": []}, "nearest maps vectors and/or images"),
    ({"vectors": [3]}, "nearest vectors task 1 must be a mapping"),
    ({"vectors": [{"task": "t", "rows": 10, "classes": 3, "order": []}]}, "needs task, rows .*noise"),
    ({"vectors": [{"task": "t", "rows": "many", "classes": 3, "noise": 0.1, "order": []}]}, "rows \\(a count\\)"),
    ({"vectors": [{"task": "t", "rows": 10, "classes": 1, "noise": 0.1, "order": []}]}, "classes at least 2"),
    ({"vectors": [{"task": "t", "rows": 10, "classes": 3, "noise": 1.5, "order": []}]}, "noise in \\[0, 1\\]"),
    ({"vectors": [{"task": "t", "rows": 10, "classes": 3, "noise": 0.1, "order": ["gce", "nope"]}]},
     "orders entries the vectors portfolio does not have: nope"),
])
def test_a_malformed_nearest_part_is_one_line_naming_the_file(tmp_path, nearest, message):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"vectors": PORTFOLIO["vectors"], "nearest": nearest}))
    with pytest.raises(UserError, match=message) as info:
        load_nearest(path, load_portfolio(path))
    assert str(path) in str(info.value)


def _options(tmp_path, spec, **kw) -> SearchOptions:
    base = dict(data=spec, space="quick", trials=4, storage=f"sqlite:///{tmp_path}/s.db", executor="local",
                progress=False, cv=1)
    return SearchOptions(**{**base, **kw})


def test_a_search_runs_the_entries_of_the_nearest_task_first(tmp_path, tiny_spec):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(PORTFOLIO))
    fixed = search(_options(tmp_path, tiny_spec, portfolio=str(path), study="fixed"))
    assert [t.user_attrs.get("portfolio") for t in fixed.trials] == [None, "gce", "mixup", "mae"]
    near = search(_options(tmp_path, tiny_spec, portfolio=str(path), study="near", portfolio_order="nearest"))
    assert [t.user_attrs.get("portfolio") for t in near.trials] == [None, "mae", "gce", "mixup"]
    assert near.user_attrs["noise_profile"] == fixed.user_attrs["noise_profile"]  # computed once, recorded as ever


def test_the_order_the_file_names_for_the_kind_is_the_default_and_the_flag_overrides_it(tmp_path, tiny_spec,
                                                                                         monkeypatch):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({**PORTFOLIO, "order": {"vectors": "nearest"}}))
    assert (file_order(path, "vectors"), file_order(path, "images")) == ("nearest", "fixed")
    reads, read = [], portfolio_module.read_yaml_file
    monkeypatch.setattr(portfolio_module, "read_yaml_file", lambda p, what: reads.append(p) or read(p, what))
    near = search(_options(tmp_path, tiny_spec, portfolio=str(path), study="near"))
    assert [t.user_attrs.get("portfolio") for t in near.trials] == [None, "mae", "gce", "mixup"]
    assert reads == [str(path)]  # entries, order and nearest tasks from one parse of the file
    assert "noise_profile" in near.user_attrs
    fixed = search(_options(tmp_path, tiny_spec, portfolio=str(path), study="fixed", portfolio_order="fixed"))
    assert [t.user_attrs.get("portfolio") for t in fixed.trials] == [None, "gce", "mixup", "mae"]
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(PORTFOLIO))
    assert file_order(plain, "vectors") == "fixed"
    empty = tmp_path / "empty.yaml"  # a kind the build ships no entries for: nothing to order, no error
    empty.write_text(yaml.safe_dump({"vectors": [], "images": [{"name": "cnn", "params": {"model": "cnn"}}]}))
    none = search(_options(tmp_path, tiny_spec, portfolio=str(empty), study="none", portfolio_order="nearest"))
    assert not any("portfolio" in t.user_attrs for t in none.trials)


@pytest.mark.parametrize("order", [["nearest"], {"tables": "nearest"}, {"vectors": "closest"}])
def test_a_malformed_order_is_one_line_naming_the_file(tmp_path, tiny_spec, capsys, order):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({**PORTFOLIO, "order": order}))
    with pytest.raises(UserError, match="order maps vectors and/or images to one of fixed, nearest") as info:
        file_order(path, "vectors")
    assert str(path) in str(info.value)
    code = main(["search", "--data", "synthetic", "--samples", "200", "--dims", "4", "--classes", "3", "--space",
                 "quick", "--trials", "2", "--executor", "local", "--no-progress", "--storage",
                 f"sqlite:///{tmp_path}/cli.db", "--portfolio", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "order maps" in err[0]
    assert optuna.get_all_study_names(f"sqlite:///{tmp_path}/cli.db") == []


def test_nearest_order_mistakes_are_one_line(tmp_path, tiny_spec, capsys):
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({"vectors": PORTFOLIO["vectors"]}))
    with pytest.raises(UserError, match="records no suite tasks for vectors data"):
        search(_options(tmp_path, tiny_spec, portfolio=str(plain), portfolio_order="nearest"))
    with pytest.raises(UserError, match="has no effect with --no-portfolio"):
        search(_options(tmp_path, tiny_spec, portfolio=None, portfolio_order="nearest"))
    with pytest.raises(UserError, match="unknown --portfolio-order 'closest'"):
        search(_options(tmp_path, tiny_spec, portfolio_order="closest"))
    assert optuna.get_all_study_names(f"sqlite:///{tmp_path}/s.db") == []  # refused before a study is made
    code = main(["search", "--data", "synthetic", "--samples", "200", "--dims", "4", "--classes", "3", "--space",
                 "quick", "--trials", "2", "--executor", "local", "--no-progress", "--storage",
                 f"sqlite:///{tmp_path}/cli.db", "--portfolio", str(plain), "--portfolio-order", "nearest"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "records no suite tasks" in err[0]
