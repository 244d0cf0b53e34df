"""The offline portfolio build of ``benchmarks/portfolio.py``: regrets, the greedy choice, the tuned
entries taken from a search and which task they belong to."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import portfolio  # noqa: E402
from portfolio import (PLAIN, TABLES, best_combinations, greedy, mean_ranks, real_table, refusal, regrets,  # noqa: E402
                       stale_tasks, suite_fingerprint, tasks, tuned_name, tuned_on)


def test_the_suite_holds_real_tables_read_offline_with_signal_and_no_held_out_data():
    suite = tasks()
    assert len({t["name"] for t in suite}) == len(suite)
    tables = [t for t in suite if "table" in t]
    assert {t["table"] for t in tables} == set(TABLES) and all(t["kind"] == "vectors" for t in tables)
    for task in tables:
        x, y = real_table(task["table"])
        assert x.shape[0] == len(y) == task["rows"] and x.ndim == 2 and np.isfinite(x).all()
        assert sorted(np.unique(y)) == list(range(task["classes"]))
        assert refusal(task) == ""  # the injected noise leaves the labels a signal
    held_out = ("digits", "cars", "penguin", "mnist")
    assert not any(h in t["name"] or h == t.get("table") for t in suite for h in held_out)


def test_rows_made_with_other_settings_or_none_recorded_or_of_a_task_gone_are_stale(tmp_path, monkeypatch):
    vec, img = tasks()[0], tasks()[12]
    assert suite_fingerprint(vec) != suite_fingerprint(img)  # a cnn for images: another space
    record = tmp_path / "matrix.json"
    record.write_text(json.dumps({"fingerprints": {vec["name"]: suite_fingerprint(vec), img["name"]: "0" * 16,
                                                   "vec05-gone": suite_fingerprint(vec)}}))
    monkeypatch.setattr(portfolio, "MATRIX", record)
    matrix = {vec["name"]: {}, img["name"]: {}, tasks()[1]["name"]: {}, "vec05-gone": {}}
    assert stale_tasks(matrix) == sorted([img["name"], tasks()[1]["name"], "vec05-gone"])


def test_regret_is_zero_for_the_best_and_one_for_the_worst():
    assert regrets({"a": 0.9, "b": 0.5, "c": 0.7}) == pytest.approx({"a": 0.0, "b": 1.0, "c": 0.5})
    assert regrets({"a": 0.6, "b": 0.6}) == {"a": 0.0, "b": 0.0}


def test_greedy_adds_what_covers_the_tasks_plain_ce_loses():
    matrix = {  # "wide" is never best but good everywhere; "t1", "t2" each win one task
        "task1": {PLAIN: 0.5, "t1": 0.9, "t2": 0.5, "wide": 0.8},
        "task2": {PLAIN: 0.5, "t1": 0.5, "t2": 0.9, "wide": 0.8},
        "task3": {PLAIN: 0.9, "t1": 0.5, "t2": 0.5, "wide": 0.8},
    }
    chosen, curve = greedy(matrix, 2)
    assert chosen[0] == "wide"  # alone it lowers the mean regret most (0.25 each on tasks 1, 2)
    assert chosen[1] == "t1"  # tied with "t2" in gain and in mean rank: the first name wins
    assert curve[0] == pytest.approx(2 / 3) and curve == sorted(curve, reverse=True)
    assert greedy(matrix, 2) == (chosen, curve)  # reproducible
    assert greedy(matrix, 10)[0] == ["wide", "t1", "t2"]  # never more than the pool


def test_ties_in_gain_go_to_the_better_mean_rank_and_entries_that_add_nothing_are_left_out():
    matrix = {  # "a" and "z" both close task1's gap alone; "z" is better on the other tasks
        "task1": {PLAIN: 0.5, "a": 0.9, "z": 0.9, "dud": 0.5},
        "task2": {PLAIN: 0.9, "a": 0.5, "z": 0.8, "dud": 0.5},
        "task3": {PLAIN: 0.9, "a": 0.5, "z": 0.8, "dud": 0.5},
    }
    assert mean_ranks(matrix)["z"] < mean_ranks(matrix)["a"]
    chosen, curve = greedy(matrix, 3)
    assert chosen == ["z"] and curve == [pytest.approx(1 / 3), 0.0]  # after z nothing is left to gain


def test_tuned_entries_belong_to_their_task_only():
    assert tuned_on(tuned_name("vec01"), "vec01") and tuned_on(tuned_name("vec01", 3), "vec01")
    assert not tuned_on(tuned_name("vec010"), "vec01") and not tuned_on(tuned_name("vec01"), "vec010")
    assert not tuned_on("mlp-sce", "vec01")


def test_the_pool_leaves_out_what_was_tuned_on_a_task_the_suite_refuses(tmp_path, monkeypatch):
    refused = next(t["name"] for t in tasks() if refusal(t))
    kept = next(t["name"] for t in tasks() if not refusal(t) and t["kind"] == "vectors")
    tuned = tmp_path / "tuned.yaml"
    tuned.write_text(yaml.safe_dump({"vectors": [{"name": tuned_name(task, rank), "params": {"loss": "gce"}}
                                                 for task in (refused, kept) for rank in (1, 2)]}))
    monkeypatch.setattr(portfolio, "TUNED", tuned)
    names = [e.name for e in portfolio.pool_entries()["vectors"]]
    assert tuned_name(kept) in names and tuned_name(kept, 2) in names
    assert not any(tuned_on(n, refused) for n in names)
    assert "mlp-sce" in names  # the recipes stay


def test_best_combinations_keeps_one_trial_per_combination_and_never_plain_ce():
    study = optuna.create_study(direction="maximize")

    def add(value: float, combination: dict, **attrs) -> None:
        study.add_trial(optuna.trial.create_trial(
            value=value, params={"lr": value}, distributions={"lr": optuna.distributions.FloatDistribution(0, 1)},
            user_attrs={"combination": combination, **attrs}))

    add(0.95, {"loss": "ce"}, baseline=True)  # plain CE runs first anyway
    add(0.9, {"loss": "gce", "selection": "gmm"})
    add(0.8, {"selection": "gmm", "loss": "gce"})  # the same combination, worse: left out
    add(0.7, {"loss": "sce"})
    add(0.6, {"loss": "mae"})
    best = best_combinations(study, 2)
    assert [t.value for t in best] == [0.9, 0.7]
    assert [t.value for t in best_combinations(study, 5)] == [0.9, 0.7, 0.6]


def test_the_nearest_part_records_each_task_s_meta_features_and_its_order_and_the_search_reads_it(tmp_path,
                                                                                                  monkeypatch):
    import yaml

    from automl_noisy.search.nearest import load_nearest, nearest_order
    from automl_noisy.search.portfolio import load_portfolio

    # a suite study as `suite` leaves it: the noise profile the search estimated, trials of the pool
    suite = tasks()
    name = suite[0]["name"]
    storage = tmp_path / "suite.db"
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{storage}", direction="maximize")
    study.set_user_attr("input_shape", [10])
    study.set_user_attr("noise_profile", {"estimated_rate": 0.23456, "rows": 288, "confused": []})
    for entry, acc in ((None, 0.6), ("a", 0.7), ("b", 0.9), ("c", 0.7)):
        study.add_trial(optuna.trial.create_trial(value=acc, user_attrs={
            "test_accuracy": acc, **({"portfolio": entry} if entry else {"baseline": True})}))
    monkeypatch.setattr(portfolio, "MATRIX", tmp_path / "matrix.json")
    kinds, matrix = portfolio.performance(storage)
    meta = portfolio.task_meta()
    assert meta == {name: {"rows": 288, "classes": suite[0]["classes"], "noise": 0.2346}}
    part = portfolio.nearest_part(matrix, ["c", "a", "b", "d"], meta)
    assert part == [{"task": name, "rows": 288, "classes": 3, "noise": 0.2346, "order": ["b", "c", "a"]}]  # ties: c, a
    path = tmp_path / "portfolio.yaml"
    path.write_text(yaml.safe_dump({"vectors": [{"name": e, "params": {}} for e in "cabd"], "nearest": {"vectors": part}}))
    entries = load_portfolio(path)
    tasks_read = load_nearest(path, entries)["vectors"]
    assert [e.name for e in nearest_order(entries["vectors"], tasks_read, 300, 3, 0.2)] == ["b", "c", "a", "d"]


def test_a_task_the_suite_refuses_has_no_row_even_where_an_earlier_record_or_study_holds_one(tmp_path, monkeypatch):
    refused = next(t["name"] for t in tasks() if refusal(t))
    kept = tasks()[0]["name"]
    record = tmp_path / "matrix.json"
    record.write_text(json.dumps({"kinds": {refused: "vectors", kept: "vectors"},
                                  "matrix": {refused: {PLAIN: 0.2, "a": 0.3}, kept: {PLAIN: 0.8, "a": 0.9}},
                                  "fingerprints": {refused: "0" * 16, kept: suite_fingerprint(tasks()[0])}}))
    monkeypatch.setattr(portfolio, "MATRIX", record)
    assert portfolio.performance(tmp_path / "absent.db") == ({kept: "vectors"}, {kept: {PLAIN: 0.8, "a": 0.9}})
    storage = tmp_path / "suite.db"
    study = optuna.create_study(study_name=refused, storage=f"sqlite:///{storage}", direction="maximize")
    study.set_user_attr("input_shape", [20])
    study.add_trial(optuna.trial.create_trial(value=0.2, user_attrs={"test_accuracy": 0.2, "baseline": True}))
    kinds, matrix = portfolio.performance(storage)
    assert set(matrix) == set(kinds) == {kept} and stale_tasks(matrix) == []
    assert refused not in json.loads(record.read_text())["matrix"]


def test_the_suite_budget_runs_each_entry_the_space_allows_once_and_no_sampler_trial(tmp_path):
    """Entries tuned where DivideMix draws its penalty (instance noise) fit a pair-noise task too; a
    resumed study runs what a stopped run interrupted or left running, and nothing besides."""
    task = next(t for t in tasks() if t["kind"] == "vectors" and t["noise"].startswith("pair"))
    pool = tmp_path / "pool.yaml"
    pool.write_text(yaml.safe_dump({"vectors": [
        {"name": "gce", "params": {"loss": "gce"}},
        {"name": "dm", "params": {"preset": "dividemix", "preset.dividemix.confidence_penalty": False}},
        {"name": "cnn", "params": {"model": "cnn"}},  # no cnn for vectors: not run
        {"name": "sce", "params": {"loss": "sce"}}]}))
    url = f"sqlite:///{tmp_path}/suite.db"
    assert portfolio.suite_budget("t", url, task, pool) == (4, 3)  # plain CE and three entries
    study = optuna.create_study(study_name="t", storage=url, direction="maximize")
    state = optuna.trial.TrialState
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"baseline": True}))
    study.add_trial(optuna.trial.create_trial(value=0.6, user_attrs={"portfolio": "gce"}))
    study.add_trial(optuna.trial.create_trial(state=state.FAIL, user_attrs={"portfolio": "dm", "interrupted": True,
                                                                             "fail_reason": "interrupted"}))
    study.add_trial(optuna.trial.create_trial(state=state.RUNNING, user_attrs={"portfolio": "sce"}))
    study.add_trial(optuna.trial.create_trial(value=0.4))  # a sampler trial: counted, not an entry
    assert portfolio.suite_budget("t", url, task, pool) == (3 + 2, 3)  # three counted, dm and sce to run


def test_a_stored_study_of_another_space_is_measured_again_and_one_of_the_same_is_kept(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/tuning.db"
    for name, made in (("tune-a", "0" * 16), ("tune-b", "1" * 16)):
        optuna.create_study(study_name=name, storage=url).set_user_attr("space_fingerprint", made)
    portfolio.drop_if_other_space(url, "tune-a", "1" * 16)
    portfolio.drop_if_other_space(url, "tune-b", "1" * 16)
    portfolio.drop_if_other_space(url, "tune-c", "1" * 16)  # none stored: nothing to do
    assert optuna.get_all_study_names(url) == ["tune-b"]
    assert "tune-a: its study measured another space" in capsys.readouterr().out


def test_the_suite_section_names_the_tasks_left_out_and_the_noise_of_those_measured(tmp_path, monkeypatch):
    import _common

    report = tmp_path / "BENCHMARKS.md"
    write = _common.write_section
    monkeypatch.setattr(_common, "write_section", lambda name, body: write(name, body, report))
    measured = [t for t in tasks() if not refusal(t)][:3]  # vec00 symmetric 0.2, vec01 pair 0.3, vec02 instance 0.4
    matrix = {t["name"]: {PLAIN: 0.5, "mlp-sce": 0.6} for t in measured}
    provenance = {"built": "today", "commit": "commit abc", "suite": "suite.db",
                  "kinds": {"vectors": {"mean_normalized_regret_by_prefix": {"0 entries": 1.0, "1 entries": 0.0},
                                        "greedy": ["mlp-sce"], "order": "fixed", "evaluation": "none"}}}
    portfolio.suite_section({t["name"]: "vectors" for t in measured}, matrix,
                            {"vectors": [{"name": "mlp-sce", "params": {}}]}, provenance, 8, set(matrix),
                            portfolio.pool_entries())
    text = report.read_text()
    assert "each with one noise (symmetric 0.2, pair 0.3, instance 0.4)" in text
    left_out = [t for t in tasks() if refusal(t)]
    assert left_out and all(f"`{t['name']}` ({t['noise']} on {t['classes']} classes)" in text for t in left_out)
    assert "| vectors | + mlp-sce" in text


def _arms(ours: float, near: float, short: float) -> dict:
    """One task-seed's arms as ``portfolio_eval.py`` records them (only the export's test accuracy matters here)."""
    from portfolio_verdict import LONG, NEAR, OURS, RANDOM, SHORT

    tests = {OURS: ours, NEAR: near, LONG: short, SHORT: short, RANDOM: short}
    return {arm: {"test": v, "exported": "plain CE", "curve": [v]} for arm, v in tests.items()}


def test_the_evaluation_decides_the_order_and_whether_a_kind_ships_entries():
    from portfolio_verdict import decision, matching

    # vectors: the portfolio loses to TPE's same 20 trials on most task-seeds; images: it wins, nearer still
    rows = [{"task": f"vec0{s}", "kind": "vectors", "seed": s, "arms": _arms(0.80, 0.81, 0.80 + 0.01 * (s % 3))}
            for s in range(6)]
    rows += [{"task": f"img0{s}", "kind": "images", "seed": s, "arms": _arms(0.85 + 0.01 * (s % 2), 0.90, 0.80)}
             for s in range(6)]
    vectors, images = decision(rows, "vectors"), decision(rows, "images")
    assert vectors["order"] == "nearest" and not vectors["ship"] and "ships no entries" in vectors["why"]
    assert "nearest portfolio + TPE, 20 minus TPE alone, 20: mean" in vectors["why"]
    assert images == {"order": "nearest", "ship": True, "why": images["why"]} and "earn their trials" in images["why"]
    fixed = [dict(r, arms=_arms(0.85, 0.85, 0.80)) for r in rows if r["kind"] == "images"]
    assert decision(fixed, "images")["order"] == "fixed" and decision(fixed, "images")["ship"]
    assert decision(rows[:6], "images") is None
    # a kind's rows are read once all its planned task-seeds ran, on the same suite, pool and size
    kinds = {"vec00-x": "vectors", "vec01-x": "vectors", "img00-x": "images", "vec99-x": "vectors"}
    plan = {"suite": "s1", "pool": "p1", "size": 8, "tasks": ["vec00", "vec01", "img00"], "seeds": [0, 1]}
    ran = [{"task": f"{t}-x", "kind": kinds[f"{t}-x"], "seed": s, "arms": {}} for t in plan["tasks"] for s in plan["seeds"]]
    vectors = [r for r in ran if r["kind"] == "vectors"]
    assert matching({"plan": plan, "rows": ran}, plan, kinds) == {"images": ran[4:], "vectors": vectors}
    assert matching({"plan": plan, "rows": ran[:5]}, plan, kinds) == {"vectors": vectors}  # one image seed to go
    assert matching({"plan": plan, "rows": ran[1:]}, plan, kinds) == {"images": ran[4:]}
    assert matching({"plan": {**plan, "suite": "s2"}, "rows": ran}, plan, kinds) == {}
    assert matching({"rows": ran}, plan, kinds) == {} and matching(None, plan, kinds) == {}


def test_build_ships_what_the_evaluation_of_the_same_suite_allows(tmp_path, monkeypatch):
    import _common

    from automl_noisy.search.nearest import file_order
    from automl_noisy.search.portfolio import load_portfolio

    vec = [t for t in tasks() if t["kind"] == "vectors" and not refusal(t)][:2]
    img = [t for t in tasks() if t["kind"] == "images" and not refusal(t)][:2]
    matrix = {vec[0]["name"]: {PLAIN: 0.5, "mlp-sce": 0.7, "mlp-gce": 0.6},
              vec[1]["name"]: {PLAIN: 0.5, "mlp-sce": 0.6, "mlp-gce": 0.8},
              img[0]["name"]: {PLAIN: 0.5, "cnn-sce": 0.9, "cnn-gce": 0.6},
              img[1]["name"]: {PLAIN: 0.5, "cnn-sce": 0.6, "cnn-gce": 0.7}}
    kinds = {**{t["name"]: "vectors" for t in vec}, **{t["name"]: "images" for t in img}}
    meta = {t["name"]: {"rows": t["rows"], "classes": t["classes"], "noise": 0.3} for t in vec + img}
    record = tmp_path / "matrix.json"
    record.write_text(json.dumps({"kinds": kinds, "matrix": matrix, "meta": meta,
                                  "fingerprints": {t["name"]: portfolio.suite_fingerprint(t) for t in vec + img}}))
    out, evaluation, report = tmp_path / "portfolio.yaml", tmp_path / "eval.json", tmp_path / "BENCHMARKS.md"
    for name, value in (("MATRIX", record), ("OUT", out), ("EVALUATION", evaluation)):
        monkeypatch.setattr(portfolio, name, value)
    write = _common.write_section
    monkeypatch.setattr(_common, "write_section", lambda name, body: write(name, body, report))

    portfolio.build(tmp_path / "no-suite.db", 2)  # no evaluation yet: the greedy entries ship, said unevaluated
    shipped = load_portfolio(out)
    assert [e.name for e in shipped["vectors"]] == ["mlp-gce", "mlp-sce"] and len(shipped["images"]) == 2
    assert "ship unevaluated" in out.read_text() and file_order(out, "images") == "fixed"

    plan = {"suite": portfolio.suite_digest(kinds, matrix, meta), "pool": _common.file_digest(portfolio.POOL, portfolio.TUNED),
            "size": 2, "tasks": [t["name"].split("-")[0] for t in vec + img], "seeds": [0, 1, 2]}
    rows = [{"task": t["name"], "kind": kinds[t["name"]], "seed": s,
             "arms": _arms(0.80, 0.80, 0.82) if t in vec else _arms(0.85 + 0.01 * s, 0.90 + 0.01 * s, 0.80)}
            for t in vec + img for s in plan["seeds"]]
    evaluation.write_text(json.dumps({"plan": {**plan, "suite": "another suite"}, "rows": rows}))
    portfolio.build(tmp_path / "no-suite.db", 2)
    assert len(load_portfolio(out)["vectors"]) == 2  # an evaluation of another suite decides nothing

    evaluation.write_text(json.dumps({"plan": plan, "rows": rows[:-1]}))  # an image task-seed still to run
    portfolio.build(tmp_path / "no-suite.db", 2)
    shipped, doc = load_portfolio(out), yaml.safe_load(out.read_text())
    assert shipped["vectors"] == [] and len(shipped["images"]) == 2 and file_order(out, "images") == "fixed"
    assert "ship unevaluated" in doc["provenance"]["kinds"]["images"]["evaluation"]

    evaluation.write_text(json.dumps({"plan": plan, "rows": rows}))
    portfolio.build(tmp_path / "no-suite.db", 2)
    shipped, text = load_portfolio(out), out.read_text()
    assert shipped["vectors"] == [] and [e.name for e in shipped["images"]] == ["cnn-sce", "cnn-gce"]
    assert file_order(out, "images") == "nearest" and file_order(out, "vectors") == "fixed"
    assert "# vectors: no entries." in text and "ships no entries" in text
    doc = yaml.safe_load(text)
    assert doc["provenance"]["kinds"]["vectors"]["greedy"] == ["mlp-gce", "mlp-sce"]  # what was built, not shipped
    assert list(doc["nearest"]) == ["images"]
    section = report.read_text()
    assert "| vectors | + mlp-gce" in section and "- **vectors**: ships 0 of these 2 entries" in section
    assert "- **images**: ships 2 of these 2 entries in the nearest order" in section
