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


@dataclass(frozen=True)
class ImagePretrainingViews:
    """Random views of images for self-supervised pretraining, scaled to small images: a rotation
    of up to ``rotate`` degrees, a scaling in ``scale``, a shift of up to 1/8 of the side (zero
    padding), gaussian pixel noise and a small erased patch, drawn per sample in one batched affine
    resampling. SimCLR's crops and colour jitter assume large natural images; on small ones (8x8
    digits) strong views erase what pretraining gains, so these stay mild."""

    rotate: float = 15.0
    scale: tuple[float, float] = (0.85, 1.15)
    noise: float = 0.1
    erase: float = 0.25  # side of the erased square, as a share of the image side

    def __call__(self, x: Tensor) -> Tensor:
        import math

        import torch.nn.functional as F

        b, _, h, w = x.shape
        angle = (torch.rand(b, device=x.device) * 2 - 1) * math.radians(self.rotate)
        s = torch.empty(b, device=x.device).uniform_(*self.scale)
        shift = (torch.rand(b, 2, device=x.device) * 2 - 1) * 0.25  # 1/8 of the side: 2/8 of [-1, 1]
        cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
        out = out + self.noise * torch.randn_like(out)
        eh, ew = max(1, round(h * self.erase)), max(1, round(w * self.erase))
        top = torch.randint(0, h - eh + 1, (b, 1, 1), device=x.device)
        left = torch.randint(0, w - ew + 1, (b, 1, 1), device=x.device)
        rows, cols = torch.arange(h, device=x.device)[None, :, None], torch.arange(w, device=x.device)[None, None, :]
        erased = (rows >= top) & (rows < top + eh) & (cols >= left) & (cols < left + ew)
        return out.masked_fill(erased[:, None], 0.0)


@dataclass(frozen=True)
class CorruptionViews:
    """SCARF's views of feature vectors (Bahri, Jiang, Tay & Metzler, "SCARF: Self-Supervised
    Contrastive Learning using Random Feature Corruption", ICLR 2022): a random ``rate`` of each
    row's features is replaced by the same feature of another random row (a draw from that
    feature's empirical marginal, here over the batch). Works for any shape, features flattened."""

    rate: float = 0.6

    def __call__(self, x: Tensor) -> Tensor:
        flat = x.reshape(len(x), -1)
        donors = torch.randint(0, len(x), flat.shape, device=x.device)
        corrupt = torch.rand(flat.shape, device=x.device) < self.rate
        return torch.where(corrupt, flat.gather(0, donors), flat).reshape(x.shape)


def pretraining_views(spatial: bool, input_shape: tuple[int, ...]) -> ImagePretrainingViews | CorruptionViews:
    """The random view of self-supervised pretraining for a model on data of this shape."""
    if spatial and len(input_shape) == 3 and min(input_shape[1:]) >= 4:
        return ImagePretrainingViews()
    return CorruptionViews()
