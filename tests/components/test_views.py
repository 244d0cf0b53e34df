"""Views follow the model and the data: no spatial shift for a model that flattens its input, and an
image shift never invents strokes (the cause of DivideMix's collapse with an MLP on digits)."""

import numpy as np
import pytest
import torch

from automl_noisy.components.augment import ImageViews, VectorViews, views_for
from automl_noisy.components.models import models
from automl_noisy.data import DataSpec, load_data


@pytest.fixture(scope="module")
def digits():
    data = load_data(DataSpec("digits"))
    return torch.as_tensor(data.x_train[:400], dtype=torch.float32), torch.as_tensor(data.y_train[:400])


def _same_class_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean distance between two different samples of one class."""
    flat, out = x.flatten(1), []
    for k in y.unique():
        members = flat[y == k]
        d = torch.cdist(members, members)
        out.append(d.sum() / (len(members) * (len(members) - 1)))
    return float(torch.stack(out).mean())


@pytest.mark.parametrize("name", models.names())
def test_views_suit_the_model(name, digits):
    x, y = digits
    model = models.get(name)
    views = views_for(model.spatial, tuple(x.shape[1:]))
    assert isinstance(views, ImageViews if model.spatial else VectorViews)
    torch.manual_seed(0)
    moved = float((views.weak(x) - x).flatten(1).norm(dim=1).mean())
    if not model.spatial:  # a weak view stays much closer to its sample than another sample of its class
        assert moved < 0.25 * _same_class_distance(x, y)


def test_image_shifts_pad_with_zeros_and_invent_no_strokes(digits):
    x, _ = digits
    torch.manual_seed(0)
    weak = ImageViews(flip=False).weak(x)
    # every pixel of a shifted image is a pixel of the original or padding: no ink is added
    assert torch.all(weak.flatten(1).sum(dim=1) <= x.flatten(1).sum(dim=1) + 1e-5)
    shifted = np.stack([np.roll(np.pad(a[0], 1), (dy, dx), axis=(0, 1))[1:-1, 1:-1]
                        for a in x[:1].numpy() for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
    assert any(np.allclose(weak[0, 0].numpy(), s) for s in shifted)
