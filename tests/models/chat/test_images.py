from __future__ import annotations

import numpy as np

from rsvlm.data.sample import RasterImage
from rsvlm.models.chat.images import to_pil, to_rgb8


def test_uint8_rgb_is_used_as_is() -> None:
    data = np.random.default_rng(0).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    rgb = to_rgb8(RasterImage(data, ("red", "green", "blue")))
    assert rgb.shape == (5, 7, 3) and np.array_equal(rgb, np.moveaxis(data, 0, -1))
    assert to_pil(RasterImage(data, ("red", "green", "blue"))).size == (7, 5)


def test_other_dtypes_are_stretched_per_band_between_2_and_98_percent() -> None:
    ramp = np.arange(100, dtype=np.uint16).reshape(10, 10)
    data = np.stack([ramp * 10, ramp + 1000, ramp * 3, ramp])  # 4 bands: the last is ignored
    rgb = to_rgb8(RasterImage(data, ("red", "green", "blue", "nir")))
    for band in range(3):
        assert rgb[..., band].min() == 0 and rgb[..., band].max() == 255
        assert np.array_equal(rgb[..., band], rgb[..., 0])  # each band gets its own percentiles
    assert 100 < rgb[5, 0, 0] < 160


def test_nodata_and_nan_pixels_become_black_and_do_not_move_the_stretch() -> None:
    data = np.full((3, 4, 4), 0.5, dtype=np.float32)
    data[:, 0, :] = 0.0
    data[:, 3, :] = 1.0
    data[0, 1, 1] = np.nan
    data[:, 2, 2] = -9999.0
    rgb = to_rgb8(RasterImage(data, ("red", "green", "blue"), nodata=-9999.0))
    assert rgb[1, 1].tolist() == [0, 0, 0] and rgb[2, 2].tolist() == [0, 0, 0]
    assert rgb[3, 0].tolist() == [255, 255, 255] and rgb[0, 0].tolist() == [0, 0, 0]


def test_single_band_is_grey_and_constant_bands_are_black() -> None:
    grey = to_rgb8(RasterImage(np.arange(16, dtype=np.uint8).reshape(1, 4, 4), ("gray",)))
    assert np.array_equal(grey[..., 0], grey[..., 2])
    flat = to_rgb8(RasterImage(np.full((3, 2, 2), 7, dtype=np.int16), ("red", "green", "blue")))
    assert not flat.any()
