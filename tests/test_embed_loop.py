"""One embedding loop for files and in-memory tiles (``pipeline.embed_cached``): both get the same checks.

``adapt.regression.embed_rasters`` had its own copy of the loop, without the finite check that files get, so a
tile whose embedding overflowed reached a regression head as NaN and came out as a NaN count.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from rsvlm.adapt.regression import embed_rasters
from rsvlm.data.sample import RasterImage
from rsvlm.errors import RsvlmError
from rsvlm.pipeline import embed_images


class MeanModel:
    """Embeds a tile as (mean, 1) normalised; a tile whose pixels are all 255 overflows to NaN."""

    name = "mean-model"
    embed_dim = 2
    preprocess_id = "identity"
    weights_id = "w0"
    logit_scale = 100.0
    in_bands = None

    def __init__(self) -> None:
        self.encoded = 0

    def preprocess(self, image: RasterImage) -> torch.Tensor:
        return torch.from_numpy(image.data.astype(np.float32))

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        self.encoded += len(pixels)
        mean = pixels.mean(dim=(1, 2, 3))
        out = torch.nn.functional.normalize(torch.stack([mean, torch.ones_like(mean)], dim=1), dim=-1)
        out[mean >= 255] = float("nan")
        return out

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        raise AssertionError("unused")


def tile(value: int) -> RasterImage:
    return RasterImage(np.full((3, 4, 4), value, dtype=np.uint8), ("red", "green", "blue"))


def test_in_memory_tiles_are_refused_when_their_embeddings_are_nan() -> None:
    with pytest.raises(RsvlmError, match=r"mean-model: 1 of 2 embeddings are NaN or infinite"):
        embed_rasters(MeanModel(), [tile(10), tile(255)])


def test_tiles_and_files_share_the_loop_batches_and_cache(tmp_path: Path) -> None:
    from PIL import Image

    tiles = [tile(v) for v in (10, 20, 30, 40, 50)]
    model = MeanModel()
    first = embed_rasters(model, tiles, batch_size=2, cache_dir=tmp_path, use_cache=True)
    again = embed_rasters(model, tiles, batch_size=2, cache_dir=tmp_path, use_cache=True)
    assert model.encoded == 5  # the second call read every tile from the cache
    np.testing.assert_array_equal(first, again)
    expected = np.array([[v, 1.0] for v in (10, 20, 30, 40, 50)]) / np.hypot([10, 20, 30, 40, 50], 1)[:, None]
    np.testing.assert_allclose(first, expected, rtol=1e-6)
    paths = []
    for k, image in enumerate(tiles):
        paths.append(tmp_path / f"t{k}.png")
        Image.fromarray(image.data.transpose(1, 2, 0)).save(paths[-1])
    np.testing.assert_allclose(embed_images(model, paths, batch_size=2, use_cache=False), first, rtol=1e-6)
