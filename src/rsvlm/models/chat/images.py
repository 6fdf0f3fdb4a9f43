"""RasterImage → the 8-bit RGB Pillow image a chat model's processor expects.

Chat models see RGB photographs, so: the first three bands are used as red, green, blue (a one- or
two-band image shows its first band as grey); 8-bit data is used as is; any other dtype (uint16
reflectance, float radiance …) is stretched per band between its 2nd and 98th percentiles of valid
pixels, the usual display stretch for remote-sensing imagery. Nodata and NaN pixels become black.
Choosing a band composite (say B4-B3-B2 of Sentinel-2) is the caller's job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from rsvlm.data.sample import RasterImage

STRETCH_PERCENTILES = (2.0, 98.0)


def _stretch(band: npt.NDArray[Any], valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    values = band[valid].astype(np.float64)
    out = np.zeros(band.shape, dtype=np.uint8)
    if values.size == 0:
        return out
    lo, hi = np.percentile(values, STRETCH_PERCENTILES)
    if hi <= lo:
        return out
    scaled = (band.astype(np.float64) - lo) / (hi - lo)
    out[valid] = np.rint(np.clip(scaled[valid], 0.0, 1.0) * 255.0).astype(np.uint8)
    return out


def to_rgb8(image: RasterImage) -> npt.NDArray[np.uint8]:
    """``(height, width, 3)`` uint8 array: first three bands, percentile-stretched unless already 8-bit."""
    data = image.data[:3] if image.band_count >= 3 else np.repeat(image.data[:1], 3, axis=0)
    if data.dtype == np.uint8:
        return np.ascontiguousarray(np.moveaxis(data, 0, -1))
    valid = image.valid_mask()
    if np.issubdtype(data.dtype, np.floating):
        valid = valid & np.isfinite(data).all(axis=0)
    bands = [_stretch(band, valid) for band in data]
    return np.ascontiguousarray(np.stack(bands, axis=-1))


def to_pil(image: RasterImage) -> PILImage.Image:
    from PIL import Image

    return Image.fromarray(to_rgb8(image))
