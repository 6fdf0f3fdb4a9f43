"""Turning rsvlm's raster arrays into what an RGB image tower expects."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from rsvlm.data.sample import RasterImage


def to_pil_rgb(image: RasterImage, model_name: str) -> PILImage.Image:
    """An 8-bit RGB Pillow image; other band counts or dtypes get a clear error (band presets come later)."""
    from PIL import Image

    data = image.data
    if image.band_count == 4 and image.bands[-1] == "alpha":
        data = data[:3]
    elif image.band_count == 1:
        data = np.repeat(data, 3, axis=0)
    if data.shape[0] != 3:
        raise RsvlmError(
            f"{model_name} takes RGB images; this one has {image.band_count} bands {image.bands} "
            "(make an RGB composite first)"
        )
    if data.dtype != np.uint8:
        raise RsvlmError(f"{model_name} takes 8-bit RGB images; this one is {data.dtype} (rescale it first)")
    return Image.fromarray(np.ascontiguousarray(np.moveaxis(data, 0, -1)))
