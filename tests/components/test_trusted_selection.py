"""``selection: trusted``: the trusted rows are the labeled set and every other row is unlabeled; the
untrusted labels change nothing it learns; the search queues it (with the space's first
semi-supervised method) as the reference pipeline of data with trusted rows, once."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from automl_noisy.components.base import TrainInfo
from automl_noisy.components.selection.trusted import TrustedOnly
from automl_noisy.data import DataSpec, load_data
from automl_noisy.errors import UserError
from automl_noisy.pipeline import ComponentSpec, Pipeline
from automl_noisy.search.controller import SearchOptions, search
from automl_noisy.train import Trainer

TRUSTED = DataSpec("synthetic", "symmetric:0.5", options={"samples": 300, "features": 4, "classes": 3,
                                                          "trusted_fraction": 0.2})


def _info(trusted: np.ndarray | None, n: int = 6) -> TrainInfo:
    return TrainInfo(num_train=n if trusted is None else len(trusted), num_classes=3, input_shape=(4,), epochs=2,
                     device=torch.device("cpu"), trusted=trusted)


@dataclass
class _End:
    epoch: int
    labels: Tensor
    _logits: Tensor

    def logits(self) -> Tensor:
        return self._logits

    def features(self) -> Tensor:
        raise AssertionError("not read")


def test_weights_are_one_on_the_trusted_rows_and_zero_elsewhere_from_the_first_batch():
    sel = TrustedOnly()
    sel.setup(_info(np.array([True, False, False, True, False, True])))
    assert sel.divided() and sel.scores() is None
    losses = torch.tensor([0.1, 5.0, 0.2, 3.0, 0.0])
    w = sel.weights(losses, torch.zeros(5, 3), torch.zeros(5, dtype=torch.long), torch.tensor([3, 1, 0, 2, 5]))
    assert w.tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]  # by row, whatever the loss
    only = sel.weights(losses, torch.zeros(5, 3), torch.zeros(5, dtype=torch.long), torch.tensor([3, 1, 0, 2, 5]),
                       candidates=torch.tensor([False, True, True, True, True]))
    assert only.tolist() == [0.0, 0.0, 1.0, 0.0, 1.0]


def test_the_suspicion_score_is_the_given_labels_loss_and_zero_on_trusted_rows():
    sel = TrustedOnly()
    sel.setup(_info(np.array([True, False, False])))
    logits, labels = torch.tensor([[2.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0]]), torch.tensor([1, 1, 1])
    sel.on_epoch_end(_End(1, labels, logits))
    expected = F.cross_entropy(logits, labels, reduction="none").numpy()
    assert sel.scores() == pytest.approx([0.0, expected[1], expected[2]])
    assert sel.scores()[1] > sel.scores()[2]  # the label the network disputes is the more suspect


def test_setup_refuses_training_data_without_trusted_rows():
    for mask in (None, np.zeros(6, bool)):
        with pytest.raises(UserError, match="selection trusted needs trusted rows"):
            TrustedOnly().setup(_info(mask))


def _final_weights(pipeline: Pipeline, data) -> list[Tensor]:
    trainer = Trainer(pipeline, data, device="cpu")
    for _ in trainer.epochs():
        pass
    return [p.detach().clone() for p in trainer.networks[0].parameters()]


@pytest.mark.parametrize("semi", [None, "fixmatch", "mixmatch"])
def test_the_untrusted_labels_change_nothing_it_learns(semi):
    data = load_data(TRUSTED)
    untrusted = ~data.trusted_train
    shuffled = data.y_train.copy()
    shuffled[untrusted] = (shuffled[untrusted] + 1 + np.arange(untrusted.sum()) % 2) % 3  # every one changed
    relabeled = replace(data, y_train=shuffled)
    pipeline = Pipeline(model=ComponentSpec("mlp", {"width": 32, "depth": 1}), epochs=2, data=data.spec,
                        selection=ComponentSpec("trusted", {}),
                        semi=ComponentSpec(semi, {}) if semi else None)
    for a, b in zip(_final_weights(pipeline, data), _final_weights(pipeline, relabeled)):
        assert torch.equal(a, b)
    plain = replace(pipeline, selection=None, semi=None)  # control: without it the labels matter
    assert not all(torch.equal(a, b) for a, b in zip(_final_weights(plain, data), _final_weights(plain, relabeled)))


SPACE = """epochs: 2
families:
  model: {mlp: {width: 32, depth: 1}}
  selection: [none, small_loss, trusted]
  semi: [none, fixmatch, mixmatch]
"""


def _options(tmp_path, spec, **kw) -> SearchOptions:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    base = dict(data=spec, space=str(space), trials=3, storage=f"sqlite:///{tmp_path}/s.db", executor="local",
                progress=False, cv=1, portfolio=None)
    return SearchOptions(**{**base, **kw})


def test_a_search_on_data_with_trusted_rows_queues_the_reference_after_plain_ce_once(tmp_path):
    study = search(_options(tmp_path, TRUSTED))
    first = study.trials[1]
    assert study.trials[0].user_attrs.get("baseline")
    assert first.user_attrs.get("reference") == "trusted+fixmatch"  # the space's first semi-supervised method
    assert first.params["selection"] == "trusted" and first.params["semi"] == "fixmatch"
    assert first.user_attrs["pipeline"]["selection"]["name"] == "trusted"
    resumed = search(_options(tmp_path, TRUSTED, trials=5))
    assert [t.user_attrs.get("reference") for t in resumed.trials].count("trusted+fixmatch") == 1


def test_without_trusted_rows_there_is_no_reference_and_no_trusted_selector(tmp_path):
    plain = replace(TRUSTED, options={"samples": 300, "features": 4, "classes": 3})
    study = search(_options(tmp_path, plain, trials=4))
    assert not any("reference" in t.user_attrs for t in study.trials)
    assert all(t.params.get("selection") != "trusted" for t in study.trials)


def test_on_images_the_reference_trains_the_cnn_on_its_frozen_encoder():
    """The search plans the reference on the network REFERENCE_NETWORK names for the kind of data
    (for images the cnn on its self-supervised encoder, frozen); vectors keep the baseline's."""
    from automl_noisy.data.folds import train_rows
    from automl_noisy.search.controller import _warm_starts
    from automl_noisy.search.space import load_space

    for spec, model, start in ((DataSpec("digits", "symmetric:0.4", options={"trusted_fraction": 0.05}), "cnn",
                                "frozen"), (TRUSTED, None, "random")):
        data = load_data(spec)
        space = load_space("default").for_shape(data.input_shape, train_rows(data), True)
        (attribute, name, params), *_ = _warm_starts(space, data, SearchOptions(spec, portfolio=None))
        assert (attribute, name, params["selection"], params["semi"]) == ("reference", "trusted+mixmatch", "trusted",
                                                                          "mixmatch")
        assert (params.get("model"), params["start"]) == (model, start)
