"""Augmented views for contrastive training, chosen to mimic what a scene model meets elsewhere:
other framings (random resized crops), no canonical orientation (flips, 90° rotations), other sensors
and atmospheres (colour jitter, desaturation) and coarser ground resolution (down- then up-sampling).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as fn


def augment(pixels: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """One random view of a (3, H, W) image in [-1, 1]; output has the same size."""
    _, h, w = pixels.shape
    x = pixels
    scale = rng.uniform(0.55, 1.0)
    ch, cw = max(8, int(h * np.sqrt(scale))), max(8, int(w * np.sqrt(scale)))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    x = x[:, top : top + ch, left : left + cw]
    if rng.random() < 0.25:  # coarser ground resolution: lose detail, keep the framing
        factor = rng.uniform(2.0, 4.0)
        small = (max(4, int(ch / factor)), max(4, int(cw / factor)))
        x = fn.interpolate(x[None], size=small, mode="bilinear", align_corners=False, antialias=True)[0]
    x = fn.interpolate(x[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    if rng.random() < 0.5:
        x = x.flip(-1)
    x = torch.rot90(x, int(rng.integers(0, 4)), dims=(1, 2))
    brightness, contrast = rng.uniform(-0.15, 0.15), rng.uniform(0.8, 1.2)
    mean = x.mean()
    x = (x - mean) * contrast + mean + brightness
    gray = x.mean(dim=0, keepdim=True)
    saturation = 0.0 if rng.random() < 0.1 else rng.uniform(0.7, 1.3)
    x = gray + (x - gray) * saturation
    return x.clamp(-1.0, 1.0).contiguous()
