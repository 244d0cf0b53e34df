"""Weak and strong views of a batch, chosen by the model and the data together (for
semi-supervised methods, which train on them).

Image views only for a model that sees images as images (``ModelFactory.spatial``: convolutions)
on image-shaped data ``(B, C, H, W)``: the weak view is a random translation (pad-and-crop by up to
1/8 of the side, padding with zeros: reflecting the border of a small image copies strokes into it,
e.g. on 8x8 digits a 1-pixel reflect shift moves a digit by 0.73 of its norm, further than two
digits of one class lie apart) plus a horizontal flip for colour images (a flipped digit is another
glyph, so grayscale images are not flipped); the strong view adds torchvision's RandAugment and a
random erasing (cutout) as in FixMatch, drawn per group of ``group`` samples (each group draws its
own ops: per-sample calls would cost more than the training step on small images). A model that
flattens its input (an MLP) gets feature-space views whatever the data's shape, never spatial
shifts: gaussian noise, and for the strong view a larger noise plus feature dropout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ImageViews:
    """Views of image batches; values are mapped to uint8 and back for torchvision's ops."""

    flip: bool
    magnitude: int = 9
    group: int = 8

    def weak(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        pad_h, pad_w = max(1, h // 8), max(1, w // 8)
        padded = torch.nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h), value=0.0)
        dy = torch.randint(0, 2 * pad_h + 1, (b,), device=x.device)
        dx = torch.randint(0, 2 * pad_w + 1, (b,), device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]
        out = padded[torch.arange(b, device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
        if self.flip:
            flip = torch.rand(b, device=x.device) < 0.5
            out = torch.where(flip[:, None, None, None], out.flip(dims=(3,)), out)
        return out.contiguous()

    def strong(self, x: Tensor) -> Tensor:
        from torchvision.transforms import v2

        x = self.weak(x)
        lo, hi = x.amin(), x.amax()
        scale = (hi - lo).clamp_min(1e-8)
        images = ((x - lo) / scale * 255).round().to(torch.uint8)
        policy = v2.Compose([v2.RandAugment(num_ops=2, magnitude=self.magnitude),
                             v2.RandomErasing(p=1.0, scale=(0.02, 0.15), value=0)])
        strong = torch.cat([policy(chunk) for chunk in images.cpu().split(self.group)]).to(x.device)
        return strong.to(x.dtype) / 255 * scale + lo


@dataclass(frozen=True)
class VectorViews:
    """Views of feature vectors (standardized features, so noise is in units of one std)."""

    weak_noise: float = 0.05
    strong_noise: float = 0.2
    dropout: float = 0.2

    def weak(self, x: Tensor) -> Tensor:
        return x + self.weak_noise * torch.randn_like(x)

    def strong(self, x: Tensor) -> Tensor:
        keep = (torch.rand_like(x) >= self.dropout).to(x.dtype)
        return (x + self.strong_noise * torch.randn_like(x)) * keep


def views_for(spatial: bool, input_shape: tuple[int, ...]) -> ImageViews | VectorViews:
    """The views that suit a model (``spatial``: it convolves over the image) on data of this
    per-sample shape."""
    if spatial and len(input_shape) == 3 and min(input_shape[1:]) >= 4:
        return ImageViews(flip=input_shape[0] == 3)
    return VectorViews()
